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
    assert len(rows) == 2 and all(x['question'] == 'what is it?' and 'answer' in x for x in rows)

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
    from transformers import Blip2ForConditionalGeneration
    assert Blip2ForConditionalGeneration.from_pretrained(work/'merged') is not None

def test_train_then_caption_with_its_adapter(tmp_path):
    r = run('train', '--data', 'synthetic:6', '--output', str(tmp_path/'run'), '--max-steps', '2', '--batch-size', '3', '--lora-r', '4', '--json')
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.splitlines()[-1])['adapter'] == str(tmp_path/'run')
    from blip2_lora.infer import load_for_inference, caption
    from blip2_lora.data import synthetic
    m, p = load_for_inference(tmp_path/'run')
    caps = caption(m, p, synthetic(2, seed=1)['image'], max_new_tokens=5)
    assert len(caps) == 2 and all(isinstance(c, str) for c in caps)

def test_plan_prints_table():
    r = run('plan', '--model', 'Salesforce/blip2-opt-2.7b', '--quant', 'nf4', '--lora-r', '8', '--gpu-memory', '16')
    assert r.returncode == 0, r.stderr
    assert 'total' in r.stdout and 'NF4' in r.stdout and '16 GB' in r.stdout
    r = run('plan', '--targets', 'nope')
    assert r.returncode == 2 and r.stderr.count('\n') == 1 and 'nope' in r.stderr
