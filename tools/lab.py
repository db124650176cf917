"""`make lab`: JupyterLab on `nbs/`, with `--allow-root` only when running as root.

`python tools/lab.py [jupyter lab options]` runs the command that `lab_argv()` builds; `tests/test_lab.py` starts the
same command headless (`--no-browser`, a free port, a token) so the test checks what `make lab` runs.
`python tools/lab.py --print` shows the command without running it.
"""
import os, shlex, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def lab_argv(*extra:str, python:str=sys.executable) -> list[str]:
    "The `jupyter lab` command line of `make lab`: the venv's JupyterLab on `nbs/`, `--allow-root` as root."
    argv = [python, '-m', 'jupyterlab', str(ROOT/'nbs')]
    # Jupyter refuses to start as root ("Running as root is not recommended") unless told; containers run as root.
    if hasattr(os, 'geteuid') and os.geteuid() == 0: argv.append('--allow-root')
    return argv + list(extra)

def main(args:list[str]) -> int:
    if args[:1] == ['--print']:
        print(shlex.join(lab_argv(*args[1:])))
        return 0
    try: import jupyterlab  # noqa: F401
    except ImportError:
        print('JupyterLab is not installed: `make lab` installs it (pip install -e ".[lab]")', file=sys.stderr)
        return 2
    argv = lab_argv(*args)
    os.chdir(ROOT)
    os.execv(argv[0], argv)  # replace this process: Ctrl-C and Jupyter's shutdown prompt reach the server itself

if __name__ == '__main__': sys.exit(main(sys.argv[1:]))
