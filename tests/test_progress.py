"Progress output in logs: when stderr is not a terminal, training prints a few plain lines, not a redrawn bar."
import subprocess, sys, textwrap
from pathlib import Path

def test_plain_progress_lines_in_a_log(tmp_path):
    code = textwrap.dedent(f'''
        from blip2_lora.train import finetune
        finetune(data='synthetic:12', output={str(tmp_path/'run')!r}, max_steps=60, batch_size=2, save_steps=100, targets='llm-all')
    ''')
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=600)   # stderr is a pipe, as in CI logs
    assert r.returncode == 0, r.stderr[-2000:]
    steps = [l for l in r.stderr.splitlines() if l.startswith('step ')]
    assert 5 <= len(steps) <= 12, steps                        # about ten lines for the whole run
    assert steps[-1].startswith('step 60/60 (100%)') and 'loss' in steps[-1]
    assert '\r' not in r.stderr and '%|' not in r.stderr        # no tqdm bar redraws
