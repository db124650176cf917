"Training on the tiny BLIP-2 (CPU): image use, feature cache, int8/NF4, 2 processes, kill -9 + resume, NaN guard, bad input."
import json, os, subprocess, sys
from pathlib import Path
import pytest, torch, datasets
from safetensors.torch import load_file
from transformers import set_seed
from peft import PeftModel
from transformers.models.blip_2.modeling_blip_2 import BaseModelOutputWithVisionQformerOutputs
from blip2_lora.models import Blip2LoraError, load_model, load_processor
from blip2_lora.lora import add_lora
from blip2_lora.data import synthetic, Collator
from blip2_lora.train import (TrainConfig, train, finetune, build_feature_cache, COMPLETE, RUN_FILE, NonFiniteLoss,
                              last_checkpoint, clear_output)

WORKER = Path(__file__).parent/'train_worker.py'
ROOT = Path(__file__).parents[1]

def adapter(d): return load_file(str(Path(d)/'adapter_model.safetensors'))
def max_diff(a, b):
    assert a.keys() == b.keys() and len(a) > 0
    return max((a[k] - b[k]).abs().max().item() for k in a)
def losses(r): return torch.tensor([h['loss'] for h in r.log_history if 'loss' in h])

def worker(args:dict, *flags, nproc:int=1):
    env = dict(os.environ, OMP_NUM_THREADS='1', TOKENIZERS_PARALLELISM='false')
    cmd = [sys.executable, str(WORKER), json.dumps(args), *flags]
    if nproc > 1: cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', f'--nproc_per_node={nproc}', *cmd[1:]]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)

def heldout_loss(model, data):
    b = Collator(load_processor())([data[i] for i in range(len(data))])
    with torch.no_grad(): return model.eval()(**b).loss.item()

def test_loss_depends_on_image_and_cache_is_exact():
    "The training loss changes with the image; cached soft prompts give the same loss as pixels."
    set_seed(0); m = add_lora(load_model(), 'seed', 8, 16, 0.0).eval()
    data = synthetic(6, 0); col = Collator(load_processor())
    b = col([data[i] for i in range(6)])
    feats = build_feature_cache(m, data, col, batch_size=4)                      # (6, n_query, d_lm)
    def loss(f):
        mm = {'image': BaseModelOutputWithVisionQformerOutputs(pooler_output=f)}
        with torch.no_grad(): return m(pixel_values=None, mm_encoder_outputs=mm, input_ids=b['input_ids'], attention_mask=b['attention_mask'], labels=b['labels']).loss.item()
    with torch.no_grad(): pix = m(**b).loss.item()
    assert abs(loss(feats) - pix) < 1e-6
    assert abs(loss(feats.roll(1, 0)) - pix) > 1e-5                              # other images, other loss
    assert abs(loss(torch.zeros_like(feats)) - pix) > 1e-4

def test_trained_adapter_uses_the_image(tmp_path):
    "After training, held-out captions are likelier with their own images than with the images shuffled."
    finetune(data='synthetic:48', output=tmp_path/'r', targets='llm-all', max_steps=150, batch_size=8, lr=5e-3, lora_dropout=0.0, save_steps=1000)
    m = PeftModel.from_pretrained(load_model(), tmp_path/'r').eval()
    held = synthetic(24, 7); b = Collator(load_processor())([held[i] for i in range(24)])
    with torch.no_grad():
        right = m(**b).loss.item()
        wrong = m(**dict(b, pixel_values=b['pixel_values'].roll(1, 0))).loss.item()
    print(f'held-out loss: own images {right:.3f}, shuffled images {wrong:.3f}')
    assert right < 2.0 and wrong - right > 0.1

def test_cache_equivalence_and_frozen_eval_mode(tmp_path):
    "Loss trajectory and adapter with and without the cache agree within 1e-5; frozen towers run in eval mode."
    tr, runs = synthetic(12, 0), {}
    for cache in (True, False):
        set_seed(0); m = add_lora(load_model(), 'seed', 8, 16, 0.1)          # LoRA dropout consumes the RNG
        b = m.get_base_model(); modes = []
        hooks = [b.qformer.register_forward_hook(lambda mod, i, o: modes.append(mod.training)),
                 b.vision_model.register_forward_hook(lambda mod, i, o: modes.append(mod.training))]
        runs[cache] = train(m, load_processor(), tr, None, TrainConfig(output_dir=str(tmp_path/f'c{cache}'), max_steps=8, batch_size=3, lr=3e-3, cache=cache))
        for h in hooks: h.remove()
        assert b.qformer.config.hidden_dropout_prob > 0                          # there is dropout to switch off
        assert modes and not any(modes)                                          # only eval-mode tower forwards
        if cache: assert len(modes) == 2 * 4                                     # towers ran once per image batch (12/3), not per step
    lt, lf = losses(runs[True]), losses(runs[False])
    assert len(lt) == 8 and (lt[0] - lt[-1]) > 0.05
    assert (lt - lf).abs().max() <= 1e-5
    assert max_diff(adapter(runs[True].output_dir), adapter(runs[False].output_dir)) <= 1e-5

def test_cache_refuses_trainable_towers(tmp_path):
    set_seed(0); m = add_lora(load_model(), 'qformer', 4, 8, 0.0)
    with pytest.raises(Blip2LoraError, match='feature cache needs frozen'):
        train(m, load_processor(), synthetic(3, 0), None, TrainConfig(output_dir=str(tmp_path/'o'), max_steps=1))
    assert not (tmp_path/'o').exists()
    with pytest.raises(Blip2LoraError, match='--no-cache'):                     # asked for explicitly: refused
        finetune(data='synthetic:3', output=tmp_path/'o2', targets='qformer', max_steps=1, cache=True)
    assert not (tmp_path/'o2').exists()

@pytest.mark.parametrize('quant', ['none', 'int8', 'nf4'])
def test_training_reduces_heldout_loss(tmp_path, quant):
    "finetune (none / int8 / NF4) lowers held-out loss; the run folder loads with plain PeftModel.from_pretrained."
    out, held = tmp_path/'run', synthetic(8, 1)
    before = heldout_loss(load_model(quant=quant), held)                          # a fresh LoRA adapter is the identity
    r = finetune(data='synthetic:24', eval_data=held, output=out, quant=quant, max_steps=16, batch_size=4, lr=3e-3, save_steps=8, seed=1)
    after = heldout_loss(PeftModel.from_pretrained(load_model(quant=quant), out), held)
    assert after < before - 0.02, (before, after)
    evals = [h['eval_loss'] for h in r.log_history if 'eval_loss' in h]
    assert len(evals) == 3 and r.metrics['best_eval_loss'] == min(evals)          # eval once per epoch (16 steps, 6 per epoch)
    assert max_diff(adapter(out), adapter(out/'best')) == 0                        # the saved adapter is the best one
    cfg = json.loads((out/'adapter_config.json').read_text())
    assert cfg['base_model_name_or_path'] == 'blip2-lora/tiny-opt'
    tc = json.loads((out/RUN_FILE).read_text()); assert tc['quant'] == quant and tc['gradient_checkpointing'] == (quant != 'none')
    v = json.loads((out/'versions.json').read_text()); assert v['seed'] == 1 and v['torch'] == torch.__version__
    m = json.loads((out/'metrics.json').read_text())
    assert {'eval_loss', 'eval_bleu4', 'eval_cider', 'eval_exact_match'} <= m['final']['eval'].keys()
    assert (out/'loss.png').stat().st_size > 1000 and (out/'tokenizer.json').exists() and (out/'best').is_dir()
    assert [p.name for p in sorted((out/'checkpoints').iterdir())] == ['checkpoint-16', 'checkpoint-8']
    assert all((p/COMPLETE).exists() for p in (out/'checkpoints').iterdir())

def test_two_processes_match_one(tmp_path):
    "torchrun, 2 processes x batch 2 (gloo) == 1 process x batch 4: same adapter within 1e-5."
    # Summation order differs (two half batches + all-reduce vs one batch), so gradients differ by float rounding;
    # Adam divides by sqrt(v), which turns rounding in lora_A's near-zero early gradients into update noise ~ lr.
    # Measured max |diff| at lr 1e-3 (below): 2.2e-7 on tiny-opt v5, 1.7e-6 on v6 (5.7e-6 at lr 3e-3 on v5). A real
    # fault (a process training on its half batch alone, or on the wrong rows) would change Adam's updates themselves,
    # on the order of lr = 1e-3 per step: far above the bound.
    base = dict(data='synthetic:16', eval_data='synthetic:4:1', max_steps=6, lora_dropout=0.0, lr=1e-3, save_steps=3, targets='seed')
    r2 = worker(dict(base, output=str(tmp_path/'two'), batch_size=2), nproc=2)
    assert r2.returncode == 0, r2.stderr[-3000:]
    lines = r2.stdout.splitlines()
    assert sorted(l for l in lines if l.startswith('PREDICT')) == ['PREDICT rank=0 n=2'] * 2 + ['PREDICT rank=1 n=2'] * 2  # 2 evals, sharded
    best = {l.split()[1]: l.split()[2] for l in lines if l.startswith('BEST')}
    assert best.keys() == {'rank=0', 'rank=1'} and len(set(best.values())) == 1       # every process loaded the same best/
    r1 = worker(dict(base, output=str(tmp_path/'one'), batch_size=4))
    assert r1.returncode == 0, r1.stderr[-3000:]
    d = max_diff(adapter(tmp_path/'one'), adapter(tmp_path/'two'))
    print('2-process vs 1-process max |diff|', d)
    assert d <= 1e-5
    m2, m1 = (json.loads((tmp_path/d/'metrics.json').read_text())['final'] for d in ('two', 'one'))
    assert m2['best_step'] == m1['best_step'] and abs(m2['eval']['eval_loss'] - m1['eval']['eval_loss']) < 1e-5
    gen = lambda m: {k: v for k, v in m['eval'].items() if k.startswith(('eval_bleu', 'eval_cider', 'eval_exact')) or k == 'eval_sample'}
    assert len(gen(m1)) >= 4 and gen(m2) == gen(m1)                                 # shards gathered back in order

def test_nan_on_one_process_stops_all(tmp_path):
    "A NaN loss on process 1 only: both processes stop at the same step with the same message (no hang in the all-reduce)."
    r = worker(dict(data='synthetic:8', output=str(tmp_path/'n'), max_steps=4, batch_size=2, save_steps=1), '--nan-on-rank', '1', nproc=2)
    msgs = {l.split()[1]: l.split(' ', 2)[2] for l in r.stdout.splitlines() if l.startswith('NONFINITE')}
    assert msgs.keys() == {'rank=0', 'rank=1'}, r.stdout[-2000:] + r.stderr[-3000:]
    assert len(set(msgs.values())) == 1 and 'at step 2' in msgs['rank=0'] and 'process 1' in msgs['rank=0'], msgs
    assert last_checkpoint(tmp_path/'n'/'checkpoints').name == 'checkpoint-1'

KILL_ARGS = dict(data='synthetic:12', max_steps=8, batch_size=3, lr=3e-3, save_steps=2)   # LoRA dropout 0.05 on

@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp('ref')/'ref'
    return out, finetune(**KILL_ARGS, output=out)

@pytest.mark.parametrize('kill', ['--kill-after-step', '--kill-in-save', '--kill-before-marker'])
def test_kill_and_resume(tmp_path, kill, uninterrupted):
    "kill -9 between steps / halfway through checkpoint 6 / before its marker (1 checkpoint kept); resume == uninterrupted (1e-5)."
    flags = [kill, '5' if kill == '--kill-after-step' else '6'] + (['--save-total-limit', '1'] if kill == '--kill-before-marker' else [])
    r = worker(dict(KILL_ARGS, output=str(tmp_path/'k')), *flags)
    assert r.returncode == -9, r.stderr[-2000:]
    ck = tmp_path/'k'/'checkpoints'
    if kill != '--kill-after-step':
        assert (ck/'checkpoint-6').exists() and not (ck/'checkpoint-6'/COMPLETE).exists()   # torn
    assert last_checkpoint(ck) is not None and last_checkpoint(ck).name == 'checkpoint-4'  # rotation waits for the marker
    with pytest.raises(Blip2LoraError, match='already holds a training run'): finetune(**KILL_ARGS, output=tmp_path/'k')
    resumed = finetune(**KILL_ARGS, output=tmp_path/'k', resume=True)
    assert not any(p.name.startswith('torn') for p in ck.iterdir())                         # torn folders cleaned up
    if kill == '--kill-in-save': assert (ck/'checkpoint-6'/COMPLETE).exists()
    ref_out, ref = uninterrupted
    assert max_diff(adapter(tmp_path/'k'), adapter(ref_out)) <= 1e-5
    assert (losses(resumed) - losses(ref)).abs().max() <= 1e-5

def test_resume_needs_a_complete_checkpoint(tmp_path):
    "--resume of a run killed before its first complete checkpoint says so instead of silently starting over."
    out = tmp_path/'r'; (out/'checkpoints'/'checkpoint-2').mkdir(parents=True); (out/RUN_FILE).write_text('{}')
    with pytest.raises(Blip2LoraError, match='no complete checkpoint.*--overwrite'): finetune(data='synthetic:3', output=out, max_steps=2, resume=True)
    assert (out/'checkpoints'/'checkpoint-2').exists()                                      # nothing changed

def test_resume_extends_a_finished_run(tmp_path):
    "A finished run resumed with a larger max_steps continues; changes that alter the past are refused."
    kw = dict(data='synthetic:6', output=tmp_path/'x', batch_size=3, save_steps=2)
    finetune(**kw, max_steps=4)
    for bad, msg in [(dict(max_steps=6, lora_r=8), 'lora_r was 16, now 8'), (dict(max_steps=6, seed=1), 'seed was 0, now 1'),
                     (dict(max_steps=6, data='synthetic:7'), 'data was'), (dict(max_steps=3), 'max_steps 3 is less than the 4 steps')]:
        with pytest.raises(Blip2LoraError, match=msg): finetune(**dict(kw, **bad), resume=True)
    r = finetune(**kw, max_steps=6, resume=True)
    assert [h['step'] for h in r.log_history if 'loss' in h] == [1, 2, 3, 4, 5, 6]
    assert json.loads((tmp_path/'x'/RUN_FILE).read_text())['max_steps'] == 6
    assert last_checkpoint(tmp_path/'x'/'checkpoints').name == 'checkpoint-6'

@pytest.mark.parametrize('where', ['best', 'final'])
def test_outputs_are_atomic(tmp_path, monkeypatch, where):
    "A crash while writing best/ or the final adapter leaves no half-written files; the retry succeeds."
    orig = PeftModel.save_pretrained
    def crash(self, path, *a, **kw):
        name = Path(path).name                                                   # checkpoint-N, best/ or the final adapter
        if ('best' in name) if where == 'best' else not ('best' in name or name.startswith('checkpoint-')):
            Path(path).mkdir(parents=True, exist_ok=True); (Path(path)/'adapter_model.safetensors').write_bytes(b'half')
            raise OSError('disk full')
        return orig(self, path, *a, **kw)
    monkeypatch.setattr(PeftModel, 'save_pretrained', crash)
    kw = dict(data='synthetic:6', eval_data='synthetic:2:1', output=tmp_path/'a', max_steps=2, batch_size=3, save_steps=2)
    with pytest.raises(OSError, match='disk full'): finetune(**kw)
    out = tmp_path/'a'
    if where == 'best': assert not (out/'best').exists()
    else: assert (out/'best'/'adapter_config.json').exists()                      # saved before the crash, complete
    assert not (out/'adapter_model.safetensors').exists() and not (out/'metrics.json').exists()
    assert {p.name for p in out.iterdir()} <= {'checkpoints', 'best', RUN_FILE, 'versions.json'}          # no temporary left
    monkeypatch.undo()
    finetune(**kw, **(dict(resume=True) if where == 'final' else dict(overwrite=True)))
    PeftModel.from_pretrained(load_model(), out); PeftModel.from_pretrained(load_model(), out/'best')

def test_overwrite_removes_only_our_files(tmp_path):
    "--overwrite keeps a user's README.md (peft's model card is not written over it); it removes what the run recorded."
    out = tmp_path/'o'; out.mkdir(); (out/'README.md').write_text('mine'); (out/'notes.txt').write_text('mine too')
    finetune(data='synthetic:3', output=out, max_steps=1, overwrite=True)
    assert (out/'README.md').read_text() == 'mine'
    files = json.loads((out/RUN_FILE).read_text())['files']
    assert 'README.md' not in files and {'adapter_model.safetensors', 'tokenizer.json', RUN_FILE} <= set(files)
    clear_output(out, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ['README.md', 'notes.txt']

def test_vqa_run_reports_vqa_accuracy(tmp_path):
    "task 'vqa' is scored with VQA accuracy (VQAv2 normalisation), not caption metrics."
    r = finetune(data='synthetic:6', eval_data='synthetic:3:1', task='vqa', output=tmp_path/'v', max_steps=2, batch_size=3, save_steps=2)
    assert 'eval_vqa_accuracy' in r.metrics['eval'] and 0 <= r.metrics['eval']['eval_vqa_accuracy'] <= 1
    assert not any(k.startswith(('eval_bleu', 'eval_cider')) for k in r.metrics['eval'])

def test_nan_guard(tmp_path):
    "A diverging run stops at the first non-finite loss, naming the step; the last checkpoint stays complete."
    with pytest.raises(NonFiniteLoss, match=r'non-finite training loss \(nan\) at step 2: .*checkpoint-1'):
        finetune(data='synthetic:9', output=tmp_path/'n', max_steps=6, batch_size=3, lr=1e30, save_steps=1)
    ck = tmp_path/'n'/'checkpoints'
    assert [p.name for p in ck.iterdir()] == ['checkpoint-1'] and (ck/'checkpoint-1'/COMPLETE).exists()
    w = adapter(ck/'checkpoint-1'); assert all(torch.isfinite(t).all() for t in w.values())
    assert json.loads((ck/'checkpoint-1'/'trainer_state.json').read_text())['global_step'] == 1

@pytest.fixture(scope='module')
def bad_folder(tmp_path_factory):
    d = tmp_path_factory.mktemp('imf'); ds = synthetic(3, 0)
    for i, im in enumerate(ds['image']): im.save(d/f'{i}.png')
    raw = (d/'1.png').read_bytes(); (d/'1.png').write_bytes(raw[:len(raw)//2])
    (d/'metadata.jsonl').write_text(''.join(json.dumps(dict(file_name=f'{i}.png', text=t)) + '\n' for i, t in enumerate(ds['text'])))
    return d

def test_bad_input_fails_before_training(tmp_path, bad_folder):
    ds = synthetic(3, 0)
    (tmp_path/'busy').mkdir(); (tmp_path/'busy'/'notes.txt').write_text('mine')
    cases = [(dict(data='/no/such/folder'), 'does not exist'),
             (dict(data=datasets.Dataset.from_dict({'image': [], 'text': []})), 'empty (0 rows)'),
             (dict(data=ds.rename_column('text', 'caption')), "no 'text' column"),
             (dict(data=ds.map(lambda r: dict(text=' '))), "empty 'text'"),
             (dict(data=bad_folder), f'{bad_folder}/1.png is not a readable image'),
             (dict(data=ds, task='vqa'), "no 'question' column"),
             (dict(data=ds, output=tmp_path/'busy'), 'not empty and holds no blip2-lora run'),
             (dict(data=ds, epochs=2), 'not both'),
             (dict(data=ds, quant='int4'), 'choose one of none, int8, nf4'),
             (dict(data=ds, targets='everything'), 'unknown LoRA preset'),
             (dict(data=ds, lr=-1.0), 'learning rate'),
             (dict(data=ds, batch_size=0), 'batch_size must be a positive integer'),
             (dict(), 'no training data')]
    for kw, msg in cases:
        kw = dict(dict(output=tmp_path/'out', max_steps=2), **kw)
        with pytest.raises(Blip2LoraError) as e: finetune(**kw)
        assert msg in str(e.value) and '\n' not in str(e.value), (kw, str(e.value))
        assert not (tmp_path/'out').exists()                                       # nothing trained, nothing written
    assert (tmp_path/'busy'/'notes.txt').read_text() == 'mine'

# --- issue 18: TensorBoard logging ------------------------------------------------------------------------------------
def test_tensorboard_scalars_equal_metrics_json(tmp_path):
    "report_to='tensorboard': one event file in RUN/tb whose train/loss scalars are the losses of metrics.json, step by step."
    pytest.importorskip('tensorboard', reason='tensorboard is a dev requirement (settings.ini); pip install tensorboard')
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    out = tmp_path/'tb-run'
    finetune(data='synthetic:9', output=out, max_steps=3, batch_size=3, save_steps=10, report_to='tensorboard')
    events = list((out/'tb').glob('events.out.tfevents.*'))
    assert len(events) == 1
    acc = EventAccumulator(str(events[0])).Reload()
    got = [(e.step, e.value) for e in acc.Scalars('train/loss')]
    want = [(h['step'], h['loss']) for h in json.loads((out/'metrics.json').read_text())['log_history'] if 'loss' in h]
    assert [s for s, _ in got] == [1, 2, 3] and [s for s, _ in want] == [1, 2, 3]
    assert [v for _, v in got] == pytest.approx([v for _, v in want], rel=1e-6)   # event files store float32

def test_unknown_report_to_refused_before_training(tmp_path):
    with pytest.raises(Blip2LoraError, match="unknown report_to 'wandb'") as e:
        finetune(data='synthetic:3', output=tmp_path/'w', max_steps=1, report_to='wandb')
    assert '\n' not in str(e.value) and not (tmp_path/'w').exists()

# --- issue 14: defaults that learn, per base ----------------------------------------------------------------------------
def test_recipe_per_base():
    "The embedded tiny bases get the 'tiny' recipe, every other model the seed's ('real'); values are copies."
    from blip2_lora.train import RECIPES, recipe_for
    assert recipe_for('blip2-lora/tiny-opt') == ('tiny', RECIPES['tiny']) and recipe_for('blip2-lora/tiny-t5')[0] == 'tiny'
    assert recipe_for('Salesforce/blip2-opt-2.7b') == ('real', dict(targets='seed', lr=5e-4, epochs=3, batch_size=3))
    assert recipe_for('/some/folder')[0] == 'real'
    name, rec = recipe_for('blip2-lora/tiny-opt'); rec['lr'] = 1.0
    assert RECIPES['tiny']['lr'] != 1.0                                           # a copy: the table is unchanged

def test_recipe_defaults_explicit_wins_and_recorded(tmp_path, capsys):
    "finetune's None arguments come from the recipe, given ones win; the recipe is printed once and kept in the run file."
    from blip2_lora.train import RECIPES
    tiny = RECIPES['tiny']
    finetune(data='synthetic:4', output=tmp_path/'d', max_steps=1, save_steps=10)
    out = capsys.readouterr().out
    assert [l for l in out.splitlines() if l.startswith('recipe ')] == [
        f"recipe 'tiny' for blip2-lora/tiny-opt: targets={tiny['targets']} lr={tiny['lr']} batch_size={tiny['batch_size']} max_steps=1 (given: max_steps)"]
    rec = json.loads((tmp_path/'d'/RUN_FILE).read_text())
    assert (rec['targets'], rec['lr'], rec['batch_size'], rec['epochs'], rec['max_steps']) == (tiny['targets'], tiny['lr'], tiny['batch_size'], None, 1)
    assert rec['recipe'] == dict(name='tiny', **tiny, given=[])
    finetune(data='synthetic:4', output=tmp_path/'e', max_steps=1, save_steps=10, targets='seed', lr=1e-3, batch_size=2)
    rec = json.loads((tmp_path/'e'/RUN_FILE).read_text())
    assert (rec['targets'], rec['lr'], rec['batch_size']) == ('seed', 1e-3, 2)
    assert rec['recipe'] == dict(name='tiny', **tiny, given=['batch_size', 'lr', 'targets'])

def test_cache_turns_itself_off_for_tower_presets(tmp_path, capsys):
    "A preset that trains the Q-Former, cache not asked for: one printed line, the run trains uncached."
    r = finetune(data='synthetic:3', output=tmp_path/'q', targets='qformer', max_steps=1, batch_size=3, save_steps=10)
    lines = [l for l in capsys.readouterr().out.splitlines() if 'feature cache' in l]
    assert len(lines) == 1 and lines[0].startswith('feature cache off: --targets qformer'), lines
    assert json.loads((tmp_path/'q'/RUN_FILE).read_text())['cache'] is False and (r.output_dir/'adapter_model.safetensors').exists()

def test_recipe_length_is_epochs_or_steps(monkeypatch):
    "A recipe may give its length as epochs or max_steps; a length the user gives (either kind) replaces it."
    import blip2_lora.config as C
    from blip2_lora.train import _with_recipe
    monkeypatch.setitem(C.RECIPES, 'tiny', dict(targets='llm-all', lr=1e-3, max_steps=500, batch_size=4))
    use, rec, line = _with_recipe('blip2-lora/tiny-opt', dict(targets=None, lr=None, epochs=None, batch_size=None), None)
    assert use['max_steps'] == 500 and 'epochs' not in use and 'max_steps=500' in line
    use, _, line = _with_recipe('blip2-lora/tiny-opt', dict(targets=None, lr=None, epochs=2, batch_size=None), None)
    assert use['epochs'] == 2 and 'max_steps' not in use and 'given: epochs' in line
    use, _, _ = _with_recipe('blip2-lora/tiny-opt', dict(targets=None, lr=None, epochs=None, batch_size=None), 7)
    assert use['max_steps'] == 7
    use, _, _ = _with_recipe('Salesforce/blip2-opt-2.7b', dict(targets=None, lr=None, epochs=None, batch_size=None), 7)
    assert use['max_steps'] == 7 and 'epochs' not in use and use['targets'] == 'seed'
