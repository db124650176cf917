"""Peak memory of `blip2_lora.infer.evaluate` as the data set grows: it must stay flat (images decoded per batch).

Writes an imagefolder of N synthetic PNGs (`--size` px), then, for each N, runs a child process that loads the tiny
model and the data (`load_data(..., check_images=False)`) and calls `evaluate` (`--new-tokens`, `--batch-size`); the
child reports its RSS before `evaluate` and its peak RSS (`resource.getrusage`). `--src DIR` imports the package
from another checkout (e.g. `git archive OLD blip2_lora | tar -x -C /tmp/old`, then `--src /tmp/old`) to compare
with older code. No asserts: the numbers go in 06_infer's prose.

    python bench/eval_memory.py [--n-images 500,2000] [--size 128] [--batch-size 16] [--new-tokens 2] [--src DIR]
"""
from __future__ import annotations
import argparse, json, os, subprocess, sys, tempfile
from pathlib import Path

CHILD = r'''
import json, resource, sys, warnings
warnings.filterwarnings('ignore')
from blip2_lora.models import load_model, load_processor
from blip2_lora.data import load_data
from blip2_lora.infer import evaluate
folder, bs, nt = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
m, p = load_model(), load_processor()
ds = load_data(folder, check_images=False)
rss = lambda: int(next(l for l in open('/proc/self/status') if l.startswith('VmRSS')).split()[1]) / 1024
before = rss()
r = evaluate(m, p, ds, batch_size=bs, max_new_tokens=nt)
print(json.dumps(dict(n_images=r['n_images'], before_mib=before, peak_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))
'''

def make_folder(folder:Path, n:int, size:int)->Path:
    "An imagefolder of `n` synthetic PNGs with captions (reused when already there)."
    from blip2_lora.data import synthetic
    if (folder/'metadata.jsonl').exists(): return folder
    folder.mkdir(parents=True, exist_ok=True)
    ds, lines = synthetic(n, seed=0, image_size=size), []
    for i in range(n):
        r = ds[i]; r['image'].save(folder/f'{i:05d}.png'); lines.append(json.dumps({'file_name': f'{i:05d}.png', 'text': r['text']}))
    (folder/'metadata.jsonl').write_text('\n'.join(lines) + '\n')
    return folder

def measure(folder:Path, batch_size:int, new_tokens:int, src:str|None)->dict:
    "Run one `evaluate` in a child process; its RSS before and its peak, in MiB."
    env = dict(os.environ, OMP_NUM_THREADS='1', TOKENIZERS_PARALLELISM='false', TRANSFORMERS_VERBOSITY='error')
    if src: env['PYTHONPATH'] = src + os.pathsep + env.get('PYTHONPATH', '')
    cwd = src or str(Path(__file__).parents[1])
    out = subprocess.run([sys.executable, '-c', CHILD, str(folder), str(batch_size), str(new_tokens)], env=env, cwd=cwd,
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--n-images', default='500,2000'); ap.add_argument('--size', type=int, default=128)
    ap.add_argument('--batch-size', type=int, default=16); ap.add_argument('--new-tokens', type=int, default=2)
    ap.add_argument('--src', default=None, help='import blip2_lora from this folder instead (older code)')
    ap.add_argument('--work', default=None, help='where to write the image folders (default: a temporary folder)')
    a = ap.parse_args(argv)
    work = Path(a.work or tempfile.mkdtemp(prefix='eval-mem-'))
    print(f"{'images':>7} {'before evaluate MiB':>20} {'peak MiB':>9} {'peak - before':>14}   ({a.src or 'this checkout'})")
    res = {}
    for n in map(int, a.n_images.split(',')):
        r = measure(make_folder(work/f'{n}-{a.size}px', n, a.size), a.batch_size, a.new_tokens, a.src)
        print(f"{r['n_images']:>7} {r['before_mib']:>20.0f} {r['peak_mib']:>9.0f} {r['peak_mib'] - r['before_mib']:>14.0f}", flush=True)
        res[n] = r
    return res

if __name__ == '__main__': main()
