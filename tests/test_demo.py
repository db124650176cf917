"The demo learns from the image: a shortened `run_demo` on the shipped pretrained tiny BLIP-2 (CPU, ~30 s)."
import json
from pathlib import Path
import pytest
from blip2_lora.models import Blip2LoraError, resolve_model, DEFAULT_MODEL
from blip2_lora.demo import run_demo, demo_data, shuffle_captions

def test_default_model_is_the_shipped_pretrained_one():
    path = Path(resolve_model(DEFAULT_MODEL))
    assert path.parent.name == 'assets' and (path/'pretrain.json').exists(), path
    assert sum(f.stat().st_size for f in path.rglob('*') if f.is_file()) <= 20e6   # base + stage1/ stay within 20 MB (issue 14)
    info = json.loads((path/'pretrain.json').read_text())
    assert info['stage1_recall_after']['i2t@1'] > 20 * info['stage1_recall_before']['i2t@1']   # stage 1 learned (chance 0.2%)
    assert (path/'stage1'/'model.safetensors').exists()

def test_short_demo_beats_shuffled_control(tmp_path):
    r = run_demo(tmp_path/'demo', n_train=240, n_eval=48, steps=400, quiet=True)
    assert r['n_captions'] == 24 and r['n_eval'] == 48
    assert r['base'] < 0.1, r            # the base speaks another caption style: the demo is adaptation
    assert r['lora'] >= 0.6, r           # held-out images (another seed)
    assert r['control'] <= 0.2, r        # same run, captions shuffled across images: near chance (1/24)
    for p in r['paths'].values(): assert Path(p).exists(), p
    assert (tmp_path/'demo'/'adapter'/'adapter_model.safetensors').exists()
    assert json.loads((tmp_path/'demo'/'metrics.json').read_text())['lora'] == r['lora']

def test_control_data_keeps_captions_but_breaks_pairs():
    tr, _ = demo_data(48, 24)
    sh = shuffle_captions(tr, seed=1)
    assert sorted(sh['text']) == sorted(tr['text']) and sh['text'] != tr['text']

def test_held_out_must_use_another_seed():
    with pytest.raises(Blip2LoraError, match='another seed'): demo_data(seed=2, eval_seed=2)

def test_lora_run_with_a_tower_preset_turns_the_cache_off(tmp_path):
    "`blip2-lora demo --targets llm+qformer` used to stop with the cache error after loading: the cache is off for tower presets."
    from blip2_lora.demo import lora_run
    tr, _ = demo_data(8, 4)
    m, p, res = lora_run(DEFAULT_MODEL, tr, tmp_path/'qf', steps=2, batch_size=4, targets='llm+qformer', progress='none')
    assert json.loads((tmp_path/'qf'/'train_config.json').read_text())['cache'] is False

def test_cli_demo_help_states_run_demo_defaults():
    "`blip2-lora demo --help` restates run_demo's defaults (the parser cannot import torch): they must not drift apart."
    import inspect, re
    from blip2_lora.cli import build_parser
    sub = next(a for a in build_parser()._actions if hasattr(a, 'choices') and isinstance(a.choices, dict))
    helps = {a.dest: a.help for a in sub.choices['demo']._actions}
    sig = inspect.signature(run_demo).parameters
    for dest, param in dict(n_train='n_train', n_eval='n_eval', steps='steps', batch_size='batch_size', lr='lr', targets='targets', lora_r='r').items():
        stated = re.search(r'\(default ([^)]+)\)', helps[dest])[1]
        d = sig[param].default
        assert stated == str(d) if isinstance(d, str) else float(stated) == d, (dest, stated, d)
