"""Fail if `nbdev_export` or `nbdev_clean` would change any file: the module must be what the notebooks say.

Runs both on a scratch copy of the project (the working tree is never touched) and diffs the result.
Used by `make check-sync` and by `tests/test_sync.py`.
"""
import filecmp, shutil, subprocess, sys, tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

def changed_files(root:Path=ROOT)->list[str]:
    "Paths (relative) that nbdev_export + nbdev_clean would create, change or delete."
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)/'proj'; tmp.mkdir()
        ign = shutil.ignore_patterns('.venv', '.git', '_docs', '_proc', '__pycache__', '*.egg-info', '.ipynb_checkpoints', 'nbs_src')
        for name in ('settings.ini', 'setup.py', 'nbs', 'blip2_lora'):
            src = root/name
            if src.is_dir(): shutil.copytree(src, tmp/name, ignore=ign)
            elif src.exists(): shutil.copy2(src, tmp/name)
        for cmd in ('nbdev_export', 'nbdev_clean'):
            r = subprocess.run([str(BIN/cmd)], cwd=tmp, capture_output=True, text=True)
            if r.returncode: raise SystemExit(f'{cmd} failed:\n{r.stdout}\n{r.stderr}')
        out = []
        for sub in ('nbs', 'blip2_lora'):
            a, b = root/sub, tmp/sub
            fa = {p.relative_to(a) for p in a.rglob('*') if p.is_file() and '__pycache__' not in p.parts and '.ipynb_checkpoints' not in p.parts}
            fb = {p.relative_to(b) for p in b.rglob('*') if p.is_file() and '__pycache__' not in p.parts and '.ipynb_checkpoints' not in p.parts}
            for rel in sorted(fa | fb):
                if sub == 'blip2_lora' and rel.parts[0] == 'assets': continue
                if rel not in fa or rel not in fb or not filecmp.cmp(a/rel, b/rel, shallow=False): out.append(f'{sub}/{rel}')
        return out

if __name__ == '__main__':
    bad = changed_files()
    if bad:
        print('nbdev_export / nbdev_clean would change these files; run `nbdev_export && nbdev_clean` and commit:')
        for b in bad: print('  ', b)
        sys.exit(1)
    print('notebooks and blip2_lora/ are in sync and clean')
