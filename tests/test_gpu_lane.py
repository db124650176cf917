"`make test-gpu` (tools/gpu_lane.py): refuses cleanly without CUDA; its steps run on the CPU in dry-run form."
import subprocess, sys
from pathlib import Path
import pytest, torch
ROOT = Path(__file__).resolve().parent.parent

@pytest.mark.skipif(torch.cuda.is_available(), reason='a GPU is present: the lane would run for real')
def test_refuses_without_cuda():
    r = subprocess.run([sys.executable, 'tools/gpu_lane.py'], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    assert r.stderr.strip().count('\n') == 0 and 'no CUDA GPU' in r.stderr, r.stderr

def test_dry_run(tmp_path, capsys):
    "Placement tests, and the tutorial's cuda cells with the tiny model standing in for blip2-opt-2.7b and the football set (bench/gpu.py --dry-run runs in test_bench)."
    sys.path.insert(0, str(ROOT/'tools'))
    import gpu_lane
    assert gpu_lane.main(['--dry-run', '--skip', 'b', '--workdir', str(tmp_path)]) == 0
    out = capsys.readouterr().out
    table = out[out.index('\nstep'):]
    assert 'a. placement tests on cpu' in table and 'c. tutorial cuda cells (tiny stand-in)' in table and 'FAILED' not in table
    assert (tmp_path/'football-lora'/'adapter_model.safetensors').exists()      # the tutorial's run wrote its adapter there
    assert '4 cuda cells ran' in table or 'cuda cells ran' in table
