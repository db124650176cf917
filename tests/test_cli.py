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
