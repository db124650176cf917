"The console script, run as users run it (a subprocess)."
import json, subprocess, sys
from pathlib import Path
import blip2_lora

def run(*args):
    return subprocess.run([sys.executable, '-m', 'blip2_lora.cli', *args], capture_output=True, text=True)

def test_version():
    r = run('--version')
    assert r.returncode == 0 and r.stdout.strip() == f'blip2-lora {blip2_lora.__version__}'

def test_tiny_builds_loadable_model(tmp_path):
    r = run('tiny', '--output', str(tmp_path/'m'), '--lm', 't5', '--seed', '3')
    assert r.returncode == 0, r.stderr
    cfg = json.loads((tmp_path/'m'/'config.json').read_text())
    assert cfg['text_config']['model_type'] == 't5'
    from blip2_lora.models import load_model
    assert load_model(tmp_path/'m').config.text_config.model_type == 't5'

def test_bad_input_is_one_line(tmp_path):
    (tmp_path/'x').mkdir(); (tmp_path/'x'/'f').write_text('hi')
    r = run('tiny', '--output', str(tmp_path/'x'))
    assert r.returncode == 2 and r.stderr.count('\n') == 1 and 'not empty' in r.stderr and 'Traceback' not in r.stderr

# --- inference commands, run as a user runs them -------------------------------------------------
import pytest

@pytest.fixture(scope='module')
def work(tmp_path_factory):
    "A plain-peft adapter on the tiny model (random B, so it changes the output) and three images."
    import numpy as np, torch
    from PIL import Image
    from peft import LoraConfig, get_peft_model
    from blip2_lora.models import load_model
    d = tmp_path_factory.mktemp('cli')
    torch.manual_seed(0)
    get_peft_model(load_model(), LoraConfig(r=4, lora_alpha=8, target_modules=['q_proj', 'v_proj'], init_lora_weights=False)).save_pretrained(d/'ad')
    rng = np.random.RandomState(0)
    for i in range(3): Image.fromarray(rng.randint(0, 255, (32, 40, 3), dtype=np.uint8)).save(d/f'im{i}.png')
    (d/'bad.jpg').write_bytes(b'\xff\xd8\xff garbage'); (d/'plain').mkdir()
    return d

def test_help_does_not_load_torch():
    r = subprocess.run([sys.executable, '-c', 'import sys; from blip2_lora.cli import build_parser; build_parser().format_help(); print("torch" in sys.modules)'],
                       capture_output=True, text=True)
    assert r.stdout.strip() == 'False', r.stderr

def test_caption_json_lines_match_library(work):
    ims = [str(work/f'im{i}.png') for i in range(3)]
    r = run('caption', '--adapter', str(work/'ad'), '--json', '--batch-size', '2', '--max-new-tokens', '8', *ims)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(l) for l in r.stdout.splitlines()]
    assert [x['image'] for x in rows] == ims and 'Loading weights' not in r.stderr + r.stdout
    from blip2_lora.infer import load_for_inference, caption
    m, p = load_for_inference(work/'ad')
    assert [x['caption'] for x in rows] == caption(m, p, ims, max_new_tokens=8)
    r = run('caption', '--max-new-tokens', '8', ims[0])    # base model, tab-separated
    assert r.returncode == 0 and r.stdout.count('\t') == 1 and r.stdout.startswith(ims[0] + '\t')

def test_vqa_json(work):
    r = run('vqa', '--adapter', str(work/'ad'), '--question', 'what is it?', '--json', str(work/'im0.png'), str(work/'im1.png'))
    assert r.returncode == 0, r.stderr
    rows = [json.loads(l) for l in r.stdout.splitlines()]
    assert len(rows) == 2 and all(x['question'] == 'what is it?' for x in rows)
    from blip2_lora.infer import load_for_inference, answer
    m, p = load_for_inference(work/'ad')
    assert [x['answer'] for x in rows] == answer(m, p, [work/'im0.png', work/'im1.png'], 'what is it?')

@pytest.mark.parametrize('case, want', [('missing', 'does not exist'), ('unreadable', 'not a readable image'),
                                        ('not-adapter', 'not a LoRA adapter folder'), ('bad-arg', 'invalid int value')])
def test_bad_input_one_line(work, case, want):
    args = dict(missing=['caption', str(work/'nope.png')], unreadable=['caption', str(work/'bad.jpg')],
                **{'not-adapter': ['caption', '--adapter', str(work/'plain'), str(work/'im0.png')],
                   'bad-arg': ['vqa', '--question', 'q', '--batch-size', 'x', str(work/'im0.png')]})[case]
    r = run(*args)
    assert r.returncode == 2 and r.stderr.count('\n') == 1 and want in r.stderr and 'Traceback' not in r.stderr, r.stderr

def test_eval_json_and_merge(work):
    r = run('eval', '--adapter', str(work/'ad'), '--data', 'synthetic:4', '--baseline', '--json', '--max-new-tokens', '6')
    assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout)
    assert m['n_images'] == 4 and {'exact_match', 'bleu4', 'cider'} <= set(m) and m['baseline']['n_images'] == 4
    r = run('merge', '--adapter', str(work/'ad'), '--output', str(work/'merged'))
    assert r.returncode == 0, r.stderr
    import torch
    from blip2_lora.infer import load_for_inference
    assert sorted(p.name for p in (work/'merged').glob('*.safetensors')) == ['model.safetensors'] and not list((work/'merged').glob('*.bin'))
    merged, _ = load_for_inference(None, model=work/'merged')      # the folder alone, no adapter
    adapted, _ = load_for_inference(work/'ad')                     # base + adapter, merged in memory
    a, b = merged.state_dict(), adapted.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)   # the written weights are the merged ones
    base, _ = load_for_inference(None)
    assert not all(torch.equal(a[k], v) for k, v in base.state_dict().items())  # and the adapter changed them

def test_train_then_caption_with_its_adapter(tmp_path):
    r = run('train', '--data', 'synthetic:6', '--output', str(tmp_path/'run'), '--max-steps', '2', '--batch-size', '3', '--lora-r', '4', '--json')
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.splitlines()[-1])['adapter'] == str(tmp_path/'run')
    from blip2_lora.infer import load_for_inference, caption
    from blip2_lora.data import synthetic
    m, p = load_for_inference(tmp_path/'run')
    caps = caption(m, p, synthetic(2, seed=1)['image'], max_new_tokens=5)
    assert len(caps) == 2 and all(isinstance(c, str) for c in caps)
    from safetensors.torch import load_file
    w = load_file(tmp_path/'run'/'adapter_model.safetensors')
    assert any(k.endswith('lora_B.weight') and v.abs().sum() > 0 for k, v in w.items())   # trained: B starts at zero

def test_plan_prints_table():
    r = run('plan', '--model', 'Salesforce/blip2-opt-2.7b', '--quant', 'nf4', '--lora-r', '8', '--gpu-memory', '16')
    assert r.returncode == 0, r.stderr
    assert 'total' in r.stdout and 'NF4' in r.stdout and '16 GB' in r.stdout
    r = run('plan', '--targets', 'nope')
    assert r.returncode == 2 and r.stderr.count('\n') == 1 and 'nope' in r.stderr

# --- every argument checked before a model loads or a file is written ---------------------------------------------
class _Loaded(BaseException):
    "Raised by the patched loaders: a BaseException, so main()'s `except Exception` cannot turn it into a message."

@pytest.fixture
def no_load(monkeypatch):
    "Make every way to load a model raise `_Loaded` (the loaders each module imported, and from_pretrained itself)."
    import transformers
    import blip2_lora.models, blip2_lora.infer, blip2_lora.train, blip2_lora.demo
    def boom(*a, **k): raise _Loaded()
    for mod in (blip2_lora.models, blip2_lora.infer, blip2_lora.train, blip2_lora.demo):
        for name in ('load_model', 'load_processor', 'load_for_inference'):
            if hasattr(mod, name): monkeypatch.setattr(mod, name, boom)
    monkeypatch.setattr(transformers.Blip2ForConditionalGeneration, 'from_pretrained', boom)
    monkeypatch.setattr(transformers.Blip2Processor, 'from_pretrained', boom)

def cli(capsys, *args):
    "Run `blip2-lora ARGS` in-process: (exit status, stdout, stderr)."
    from blip2_lora.cli import main
    try: rc = main([str(a) for a in args])
    except SystemExit as e: rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err

BAD = {  # id: (arguments; OUT = the output folder, AD = an adapter, IM = an image), what stderr must say
    'train-epochs-inf': ('train --data synthetic:4 --output OUT --epochs inf', 'argument --epochs: must be a finite number, got inf'),
    'train-epochs-nan': ('train --data synthetic:4 --output OUT --epochs nan', 'argument --epochs: must be a finite number, got nan'),
    'train-epochs-0': ('train --data synthetic:4 --output OUT --epochs 0', 'epochs must be a finite number > 0, got 0.0'),
    'train-lora-r': ('train --data synthetic:4 --output OUT --lora-r -1', 'LoRA rank r must be a positive integer, got -1'),
    'train-grad-accum': ('train --data synthetic:4 --output OUT --grad-accum 0', 'grad_accum must be a positive integer, got 0'),
    'train-batch-size': ('train --data synthetic:4 --output OUT --batch-size 0', 'batch_size must be a positive integer, got 0'),
    'train-max-steps': ('train --data synthetic:4 --output OUT --max-steps 0', 'max_steps must be a positive integer, got 0'),
    'train-save-steps': ('train --data synthetic:4 --output OUT --save-steps 0', 'save_steps must be a positive integer, got 0'),
    'train-lr-inf': ('train --data synthetic:4 --output OUT --lr inf', 'argument --lr: must be a finite number, got inf'),
    'train-lr-0': ('train --data synthetic:4 --output OUT --lr 0', 'learning rate must be a finite number > 0'),
    'train-alpha-inf': ('train --data synthetic:4 --output OUT --lora-alpha inf', 'argument --lora-alpha: must be a finite number'),
    'train-dropout': ('train --data synthetic:4 --output OUT --lora-dropout 1', 'LoRA dropout must be in [0, 1)'),
    'train-seed': ('train --data synthetic:4 --output OUT --seed -1', 'argument --seed: must be an integer >= 0 and <= 4294967295, got -1'),
    'train-device': ('train --data synthetic:4 --output OUT --device tpu', "unknown device 'tpu'"),
    'caption-batch-size': ('caption --batch-size 0 IM', 'argument --batch-size: must be an integer >= 1, got 0'),
    'caption-max-new-tokens': ('caption --max-new-tokens 0 IM', 'max_new_tokens must be >= 1, got 0'),
    'caption-num-beams': ('caption --num-beams 0 IM', 'num_beams must be >= 1 (1 = greedy), got 0'),
    'caption-temperature': ('caption --temperature 0.7 IM', '--temperature only applies with --sample'),
    'caption-top-p-seed': ('caption --top-p 0.9 --seed 1 IM', '--top-p and --seed only apply with --sample'),
    'caption-top-p-range': ('caption --sample --top-p 1.5 IM', 'top_p must be in (0, 1], got 1.5'),
    'caption-temperature-inf': ('caption --sample --temperature inf IM', 'argument --temperature: must be a finite number'),
    'caption-device': ('caption --adapter AD --device tpu IM', "unknown device 'tpu': use auto, cpu, cuda or cuda:N"),
    'vqa-empty-question': ('vqa --question "" IM', 'argument --question: must not be empty'),
    'vqa-blank-question': ('vqa --question "  " IM', 'argument --question: must not be empty'),
    'vqa-seed': ('vqa --question "what?" --seed 3 IM', '--seed only applies with --sample'),
    'eval-limit-0': ('eval --adapter AD --data synthetic:4 --limit 0', 'argument --limit: must be an integer >= 1, got 0'),
    'eval-limit-neg': ('eval --adapter AD --data synthetic:4 --limit -1', 'argument --limit: must be an integer >= 1, got -1'),
    'eval-batch-size': ('eval --adapter AD --data synthetic:4 --batch-size 0', 'argument --batch-size: must be an integer >= 1, got 0'),
    'eval-max-new-tokens': ('eval --adapter AD --data synthetic:4 --max-new-tokens 0', 'max_new_tokens must be >= 1, got 0'),
    'eval-device': ('eval --adapter AD --data synthetic:4 --device tpu', "unknown device 'tpu'"),
    'merge-device': ('merge --adapter AD --output OUT --device tpu', "unknown device 'tpu'"),
    'tiny-seed': ('tiny --output OUT --seed -5', 'argument --seed: must be an integer >= 0'),
    'plan-gpu-memory': ('plan --gpu-memory inf', 'argument --gpu-memory: must be a finite number'),
    'demo-steps': ('demo --output OUT --steps 0', 'argument --steps: must be an integer >= 1, got 0'),
    'demo-lr': ('demo --output OUT --lr 0', 'learning rate must be a finite number > 0'),
    'demo-targets': ('demo --output OUT --targets nope', 'nope'),
}

@pytest.mark.parametrize('case', list(BAD))
def test_bad_argument_refused_before_loading(case, work, tmp_path, monkeypatch, capsys, no_load):
    import shlex
    cmd, want = BAD[case]
    monkeypatch.chdir(tmp_path)          # a default output folder would appear here
    sub = dict(OUT=tmp_path/'out', AD=work/'ad', IM=work/'im0.png')
    args = [str(sub.get(a, a)) for a in shlex.split(cmd)]
    before = sorted(work.rglob('*'))
    rc, out, err = cli(capsys, *args)     # a model load would raise _Loaded through main()
    assert (rc, err.count('\n')) == (2, 1) and want in err and 'Traceback' not in err, (rc, err)
    assert err.startswith(f'blip2-lora {args[0]}'), err
    assert out == '' and list(tmp_path.iterdir()) == [] and sorted(work.rglob('*')) == before

def test_eval_limit_reads_only_the_first_rows(work, tmp_path, capsys, no_load):
    "--limit selects rows before images are decoded: a broken image after the first N does not matter."
    d = tmp_path/'data'; d.mkdir()
    import shutil
    for i in range(3): shutil.copy(work/f'im{i}.png', d/f'im{i}.png')
    shutil.copy(work/'bad.jpg', d/'bad.jpg')
    (d/'metadata.jsonl').write_text(''.join(json.dumps(dict(file_name=f, text='a shape')) + '\n' for f in ['im0.png', 'im1.png', 'im2.png', 'bad.jpg']))
    rc, out, err = cli(capsys, 'eval', '--adapter', work/'ad', '--data', d)
    assert rc == 2 and 'bad.jpg is not a readable image' in err, err        # all rows: the broken image is found
    with pytest.raises(_Loaded): cli(capsys, 'eval', '--adapter', work/'ad', '--data', d, '--limit', '3')  # 3 good rows: on to loading

def test_batch_caption_command(tmp_path, capsys):
    "`blip2-lora batch-caption DATA OUT.jsonl`: one JSON summary, one row per image in input order, same captions as `caption`."
    import json
    from blip2_lora.cli import main
    from blip2_lora.data import synthetic
    from blip2_lora.infer import load_for_inference, caption
    out = tmp_path/'caps.jsonl'
    assert main(['batch-caption', '--batch-size', '3', '--max-new-tokens', '8', 'synthetic:5', str(out)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary['captioned'] == 5
    rows = [json.loads(l) for l in out.read_text().splitlines()]
    assert [r['index'] for r in rows] == list(range(5))
    m, p = load_for_inference(None)
    assert [r['caption'] for r in rows] == caption(m, p, list(synthetic(5)['image']), max_new_tokens=8)

def test_app_command_is_registered():
    "`blip2-lora app --help` lists its options (the page itself is tested in tests/test_app.py)."
    import subprocess, sys
    r = subprocess.run([sys.executable, '-m', 'blip2_lora.cli', 'app', '--help'], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and '--adapter' in r.stdout and '--port' in r.stdout

def test_quantized_base_keeps_adapter_unmerged_in_the_cli(tmp_path, monkeypatch):
    "caption --quant nf4 without --no-merge leaves the adapter unmerged (merging would re-quantize); --quant none merges."
    import blip2_lora.infer as inf
    from blip2_lora.cli import build_parser, _load
    from blip2_lora.train import finetune
    finetune(data='synthetic:6', output=tmp_path/'run', max_steps=1, batch_size=3, save_steps=10)
    for q, merged in [('nf4', False), ('none', True)]:
        args = build_parser().parse_args(['caption', '--adapter', str(tmp_path/'run'), '--quant', q, 'x.png'])
        m, _ = _load(args)
        assert (type(m).__name__ == 'Blip2ForConditionalGeneration') == merged, (q, type(m).__name__)

def test_export_command(tmp_path, capsys):
    "`blip2-lora export`: merged/ loads in plain transformers in float16; an LLM-only adapter also gets lora/ for vLLM."
    import torch
    from transformers import Blip2ForConditionalGeneration
    from blip2_lora.cli import main
    from blip2_lora.train import finetune
    finetune(data='synthetic:6', output=tmp_path/'run', max_steps=1, batch_size=3, save_steps=10, targets='llm-all')   # LLM-only: vLLM can serve it
    assert main(['export', '--adapter', str(tmp_path/'run'), '--output', str(tmp_path/'out')]) == 0
    out = capsys.readouterr().out
    assert 'merged model written to' in out and 'vLLM LoRA adapter written to' in out
    m = Blip2ForConditionalGeneration.from_pretrained(tmp_path/'out'/'merged', dtype='auto')
    assert m.language_model.get_input_embeddings().weight.dtype == torch.float16
    assert (tmp_path/'out'/'lora'/'adapter_model.safetensors').exists()

def test_train_report_to_flag(tmp_path):
    "--report-to reaches finetune (an unknown value is refused by argparse before anything is written)."
    from blip2_lora.cli import build_parser
    assert build_parser().parse_args(['train', '--data', 'synthetic:3', '--report-to', 'tensorboard']).report_to == 'tensorboard'

# --- train flags come from one definition (blip2_lora.config) ------------------------------------------------------
def _train_help():
    from blip2_lora.cli import build_parser
    p = build_parser()
    return next(a for a in p._actions if a.dest == 'command').choices['train'].format_help()

def test_train_help_shows_config_fields_and_recipes():
    "`train --help`: every TrainConfig-derived flag with its docments comment as help, and the recipe table."
    from fastcore.docments import docments
    from blip2_lora.cli import _TRAIN_FIELDS, _FLAG_NAME
    from blip2_lora.config import TrainConfig, RECIPES, RECIPE_BASES
    flat = ' '.join(_train_help().split())
    docs = docments(TrainConfig)
    for k in _TRAIN_FIELDS:
        flag = '--' + ('no-' if getattr(TrainConfig, k) is True else '') + _FLAG_NAME.get(k, k).replace('_', '-')
        assert f'{flag} ' in flat and ' '.join(docs[k].split()) in flat, k
    for name, rec in RECIPES.items():
        assert f'{name} ({RECIPE_BASES[name]}): ' + ', '.join(f'{k} {v}' for k, v in rec.items()) in flat

def test_train_passes_only_given_flags(monkeypatch, capsys):
    "Flags left out do not reach finetune (its defaults and the base's recipe decide); given ones do, --no-cache too."
    import blip2_lora.train
    from blip2_lora.cli import main
    from blip2_lora.train import TrainResult
    seen = []
    def fake(**kw):
        seen.append(kw); return TrainResult(Path('r'), Path('r'), {}, [])
    monkeypatch.setattr(blip2_lora.train, 'finetune', fake)
    assert main(['train', '--data', 'synthetic:3']) == 0
    assert seen[-1] == dict(data='synthetic:3')
    assert main(['train', '--data', 'synthetic:3', '--lr', '1e-3', '--no-cache', '--resume', '--quant', 'none', '--output', 'o', '--seed', '2']) == 0
    assert seen[-1] == dict(data='synthetic:3', lr=1e-3, cache=False, resume=True, quant='none', output='o', seed=2)

def test_tiny_train_gets_the_tiny_recipe(tmp_path):
    "`blip2-lora train` on the tiny base without recipe flags: the run file records the whole tiny recipe, nothing given."
    r = run('train', '--data', 'synthetic:4', '--output', str(tmp_path/'run'), '--max-steps', '1', '--save-steps', '5')
    assert r.returncode == 0, r.stderr
    from blip2_lora.config import RECIPES
    cfg = json.loads((tmp_path/'run'/'train_config.json').read_text())
    assert cfg['recipe'] == dict(name='tiny', **RECIPES['tiny'], given=[])
    assert (cfg['lr'], cfg['batch_size'], cfg['targets']) == (RECIPES['tiny']['lr'], RECIPES['tiny']['batch_size'], RECIPES['tiny']['targets'])

def test_quant_choices_come_from_config():
    "--quant choices in every subcommand: config.QUANTS (+ auto where the library takes it)."
    from blip2_lora.cli import build_parser
    from blip2_lora.config import QUANTS, QUANT_CHOICES
    assert QUANT_CHOICES == QUANTS + ('auto',)
    sub = next(a for a in build_parser()._actions if a.dest == 'command').choices
    got = {name: tuple(a.choices) for name, s in sub.items() for a in s._actions if a.dest == 'quant'}
    assert got and all(v in (QUANTS, QUANT_CHOICES) for v in got.values()), got
    assert got['plan'] == QUANTS and got['train'] == QUANT_CHOICES

def test_tiny_names_agree_with_models():
    "config.TINY_NAMES (torch-free, decides the recipe) = the keys of models.TINY_MODELS; models.QUANTS is config's."
    import blip2_lora.config as C, blip2_lora.models as M
    assert tuple(M.TINY_MODELS) == C.TINY_NAMES and M.QUANTS is C.QUANTS and M.DEFAULT_MODEL in C.TINY_NAMES
