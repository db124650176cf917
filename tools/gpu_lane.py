"""`make test-gpu`: prove the GPU path on a CUDA machine in one command, with one summary table at the end.

    python tools/gpu_lane.py            # on the GPU machine (refuses, exit 1, without CUDA)
    python tools/gpu_lane.py --dry-run  # the same steps on the CPU with the tiny model (run by tests/test_gpu_lane.py)

Steps (each timed; the lane goes on after a failure and exits 1 if any step failed):
  a. placement tests: `tests/test_device.py` with BLIP2_LORA_TEST_DEVICE=cuda (training none/int8/nf4 with the
     feature cache on and off, eval-time generation, batched caption/VQA, merge, resume), then the whole suite with
     the default device ('auto' = the GPU there). Dry run: two placement tests on the CPU (the rest runs in `make test`).
  b. `bench/gpu.py`: full-size blip2-opt-2.7b with random weights (load, caption latency, LoRA training speed and
     peak memory per precision, plan() alongside). Dry run: `--dry-run` (tiny model).
  c. the tutorial's `cuda` cells (nbs/tutorials/01_finetune.ipynb) with the random-weight full-size folder of step b
     standing in for `Salesforce/blip2-opt-2.7b` and a local data set for `ybelkada/football-dataset` (the GPU machine
     cannot reach the Hub either). Dry run: the shipped tiny model stands in.

The GPU image has torch, transformers, peft and accelerate but not bitsandbytes, datasets, fastcore and a few
more: `make gpu-pack` (here) puts their wheels into `.gpu/`; carry `.gpu` to the device machine and this script
installs them into a temporary folder first. Whole run ≤ 10 minutes on one H100/H200.
"""
from __future__ import annotations
import argparse, json, os, re, shutil, subprocess, sys, tempfile, time, traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NEED = ('bitsandbytes', 'datasets', 'fastcore', 'peft', 'accelerate', 'transformers', 'pycocoevalcap', 'IPython')

def ensure_deps(env:dict)->str:
    "Install the carried wheels (`.gpu/wheels`) into a temporary folder when imports are missing; return a note."
    missing = [m for m in NEED if subprocess.run([sys.executable, '-c', f'import {m}'], capture_output=True).returncode]
    if not missing: return 'all present'
    wheels, site = ROOT/'.gpu'/'wheels', ROOT/'.gpu'/'site'
    if not wheels.is_dir(): raise SystemExit(f"missing Python packages {', '.join(missing)} and no .gpu/wheels: run `make gpu-pack` here and carry .gpu")
    target = Path(tempfile.mkdtemp(prefix='blip2-lora-site-'))
    subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '--no-index', '--no-deps', '--no-compile', '--target', str(target),
                    *map(str, sorted(wheels.glob('*.whl')))], check=True)
    path = os.pathsep.join([str(ROOT), str(target), str(site), env.get('PYTHONPATH', '')]).rstrip(os.pathsep)
    env['PYTHONPATH'] = path; sys.path[:0] = [str(ROOT), str(target), str(site)]
    return f"installed {len(list(wheels.glob('*.whl')))} carried wheels for {', '.join(missing)}"

def cells(nb_path:Path)->list[tuple[set, str]]:
    "(flags, source) of every code cell; flags are the `#| name` lines nbdev uses (cuda, hub, slow, export...)."
    out = []
    for c in json.loads(nb_path.read_text())['cells']:
        if c['cell_type'] != 'code': continue
        src = ''.join(c['source'])
        flags = {w for l in src.splitlines() if l.startswith('#|') for w in l[2:].split()}
        out.append((flags, src))
    return out

def run_tutorial_cuda_cells(model_dir:Path, data_dir:Path, workdir:Path)->str:
    "Run the tutorial's set-up cells and every `cuda` cell, with local stand-ins for the Hub model and data set."
    subs = {"'Salesforce/blip2-opt-2.7b'": repr(str(model_dir)), "'ybelkada/football-dataset'": repr(str(data_dir)),
            "'football-lora'": repr(str(workdir/'football-lora'))}
    cs = cells(ROOT/'nbs'/'tutorials'/'01_finetune.ipynb')
    setup = [s for f, s in cs if not f and re.search(r'^\s*(import|from)\s', s, re.M)][:1]   # the imports cell
    todo = setup + [s for f, s in cs if 'cuda' in f]
    if len(todo) < 3: raise RuntimeError(f'found only {len(todo) - len(setup)} cuda cells in the tutorial')
    ns, cwd = {'__name__': '__tutorial__'}, os.getcwd()
    os.chdir(workdir)
    try:
        for i, src in enumerate(todo):
            for a, b in subs.items(): src = src.replace(a, b)
            src = '\n'.join(l for l in src.splitlines() if not l.lstrip().startswith(('!', '%')))
            exec(compile(src, f'<tutorial cuda cell {i}>', 'exec'), ns)
    finally: os.chdir(cwd)
    return f'{len(todo) - len(setup)} cuda cells ran'

def football_stand_in(out:Path, image_size:int)->Path:
    "A small local captioning set in place of ybelkada/football-dataset (6 images, as in the seed)."
    import datasets; datasets.disable_progress_bars()
    from blip2_lora.data import synthetic
    synthetic(6, seed=11, image_size=image_size).save_to_disk(str(out))
    return out

def step(rows:list, name:str, fn):
    "Run one step, time it, record ok/FAILED and a note; never raise."
    t0 = time.perf_counter()
    try: note, ok = fn() or '', True
    except SystemExit as e: note, ok = str(e), False
    except BaseException as e:
        traceback.print_exc(); note, ok = f'{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ""}', False
    rows.append((name, 'ok' if ok else 'FAILED', time.perf_counter() - t0, note))
    print(f'== {name}: {"ok" if ok else "FAILED"} ({time.perf_counter() - t0:.0f} s) {note}', flush=True)

def main(argv=None)->int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--dry-run', action='store_true', help='the same steps on the CPU with the tiny model (no CUDA needed)')
    ap.add_argument('--workers', type=int, default=None, help='pytest-xdist workers for the test suite (default 8; dry run 0)')
    ap.add_argument('--workdir', default=None, help='where the stand-in model and outputs go (default: a temporary folder)')
    ap.add_argument('--skip', default='', help='comma-separated steps to skip: a,a2,b,c')
    args = ap.parse_args(argv)
    env = dict(os.environ)
    note = ensure_deps(env) if not args.dry_run else 'dry run'
    import torch
    if not args.dry_run and not torch.cuda.is_available():
        print('make test-gpu: no CUDA GPU visible to torch: run it on a GPU machine (or tools/gpu_lane.py --dry-run for the CPU rehearsal)', file=sys.stderr)
        return 1
    T0, rows, skip = time.perf_counter(), [], set(filter(None, args.skip.split(',')))
    work = Path(args.workdir or tempfile.mkdtemp(prefix='gpu-lane-')); work.mkdir(parents=True, exist_ok=True)
    dev = 'cpu' if args.dry_run else 'cuda'
    print(f"GPU lane{' (dry run, CPU)' if args.dry_run else ''}: {torch.cuda.get_device_name() if dev == 'cuda' else 'CPU'}, "
          f'torch {torch.__version__}; deps: {note}; workdir {work}', flush=True)
    w = args.workers if args.workers is not None else (0 if args.dry_run else 8)
    def pytest(*extra, device=None):
        e = dict(env, **({'BLIP2_LORA_TEST_DEVICE': device} if device else {}))
        cmd = [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', *(['-n', str(w)] if w else []), *extra]
        r = subprocess.run(cmd, cwd=ROOT, env=e, capture_output=True, text=True)
        tail = [l for l in r.stdout.splitlines() if re.search(r'\d+ (passed|failed|error)', l)]
        if r.returncode: print(r.stdout[-6000:], r.stderr[-3000:]); raise RuntimeError(tail[-1] if tail else f'pytest exit {r.returncode}')
        return tail[-1] if tail else ''
    if 'a' not in skip:
        step(rows, f'a. placement tests on {dev}', lambda: pytest('tests/test_device.py', *(['-k', 'cpu_policy or caption_and_vqa_batched_on_device and none'] if args.dry_run else []), device=dev))
    if 'a2' not in skip and not args.dry_run:
        step(rows, 'a2. whole test suite, default device (auto = GPU)', lambda: pytest('tests/', '--ignore=tests/test_docs.py', '--ignore=tests/test_lab.py', '--ignore=tests/test_gpu_lane.py'))
    model_dir = work/'model'
    if 'b' not in skip:
        def bench():
            sys.path.insert(0, str(ROOT/'bench')); import gpu
            gpu.main(['--workdir', str(work)] + (['--dry-run'] if args.dry_run else []) + ['--json', str(work/'gpu.json')])
            r = json.loads((work/'gpu.json').read_text())
            return ', '.join(f"{x['quant']} caption {1000 * x['caption_s']:.0f} ms" for x in r['rows'])
        step(rows, 'b. bench/gpu.py' + (' --dry-run' if args.dry_run else ' (blip2-opt-2.7b, random weights)'), bench)
    if 'c' not in skip:
        def tutorial():
            md = model_dir
            if args.dry_run or not (md/'config.json').exists():
                from blip2_lora.models import resolve_model, DEFAULT_MODEL
                if not args.dry_run: raise RuntimeError('no full-size stand-in (step b did not build it)')
                md = Path(resolve_model(DEFAULT_MODEL))
            from blip2_lora.models import load_processor
            size = load_processor(md).image_processor.size['height']
            d = football_stand_in(work/'football', size)
            return run_tutorial_cuda_cells(md, d, work)
        step(rows, 'c. tutorial cuda cells' + (' (tiny stand-in)' if args.dry_run else ' (full-size stand-in)'), tutorial)
    total = time.perf_counter() - T0
    print(f"\n{'step':<58} {'result':<7} {'s':>5}  note")
    for name, res, s, n in rows: print(f'{name:<58} {res:<7} {s:5.0f}  {n}')
    print(f"total {total:.0f} s{'' if args.dry_run else (' (within' if total <= 600 else ' (OVER') + ' the 10-minute target)'}")
    if not args.workdir: shutil.rmtree(work, ignore_errors=True)
    return 0 if all(r[1] == 'ok' for r in rows) else 1

if __name__ == '__main__': sys.exit(main())
