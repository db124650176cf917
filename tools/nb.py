"""Small notebook helpers for developers (not part of the package).

    python tools/nb.py py2nb SRC.py NB.ipynb   # text -> notebook (outputs dropped)
    python tools/nb.py nb2py NB.ipynb SRC.py   # notebook -> text, to edit comfortably
    python tools/nb.py run NB.ipynb [NB ...]    # execute in place and keep outputs (for the docs), library notices dropped
    python tools/nb.py quiet NB.ipynb [NB ...]  # drop library notices from stored outputs

Text format: cells start with a line `#%%` (code) or `#%% md` (markdown); markdown is written raw.
The notebook is the source of truth: convert, edit, convert back, then `nbdev_export && nbdev_clean`.
"""
import sys, json, os, re, hashlib
from pathlib import Path

def _cell(kind, lines):
    src = '\n'.join(lines).strip('\n')
    if kind == 'md': return {'cell_type': 'markdown', 'metadata': {}, 'source': src.splitlines(True)}
    return {'cell_type': 'code', 'execution_count': None, 'metadata': {}, 'outputs': [], 'source': src.splitlines(True)}

def py2nb(src, dst):
    cells, kind, buf = [], None, []
    for line in Path(src).read_text(encoding='utf-8').splitlines():
        if line.startswith('#%%'):
            if kind is not None: cells.append(_cell(kind, buf))
            kind, buf = ('md' if line[3:].strip() == 'md' else 'code'), []
        else: buf.append(line)
    if kind is not None: cells.append(_cell(kind, buf))
    for i, c in enumerate(cells): c['id'] = hashlib.sha1(f"{i}{''.join(c['source'])}".encode()).hexdigest()[:8]
    nb = {'cells': cells, 'metadata': {'kernelspec': {'display_name': 'python3', 'language': 'python', 'name': 'python3'}},
          'nbformat': 4, 'nbformat_minor': 5}
    Path(dst).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n', encoding='utf-8')

def nb2py(src, dst):
    nb = json.loads(Path(src).read_text(encoding='utf-8'))
    out = []
    for c in nb['cells']:
        out.append('#%% md' if c['cell_type'] == 'markdown' else '#%%')
        out.append(''.join(c['source']))
        out.append('')
    Path(dst).write_text('\n'.join(out), encoding='utf-8')

NOISE = re.compile(r'site-packages/.*(Warning|warn)|kernels-community')   # tests/test_docs.py checks stored outputs with it

def drop_noise(outputs:list)->list:
    "Stream outputs without library notices (a site-packages warning and the source line it quotes, bitsandbytes' kernel notice)."
    keep = []
    for o in outputs:
        if o.get('output_type') != 'stream': keep.append(o); continue
        lines, out, skip = ''.join(o['text']).splitlines(True), [], False
        for l in lines:
            if NOISE.search(l): skip = 'site-packages/' in l; continue      # a warning is followed by its quoted source line
            if skip and l.startswith('  '): skip = False; continue
            skip = False; out.append(l)
        if out: o['text'] = out; keep.append(o)
    return keep

def quiet(*nbs):
    "Drop library notices from the stored outputs of notebooks (what `run` does after executing)."
    for p in nbs:
        nb = json.loads(Path(p).read_text(encoding='utf-8'))
        for c in nb['cells']:
            if c.get('outputs'): c['outputs'] = drop_noise(c['outputs'])
        Path(p).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n', encoding='utf-8')

def run(*nbs):
    "Execute notebooks in place with execnb (the engine nbdev_test uses), keeping outputs."
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    from execnb.nbio import read_nb, write_nb
    from execnb.shell import CaptureShell
    for p in nbs:
        p = Path(p).resolve()
        nb = read_nb(p)
        cwd = os.getcwd(); os.chdir(p.parent)
        try:
            sh = CaptureShell()
            # skip cells flagged for GPU/Hub/slow, exactly as nbdev_test does
            for c in nb.cells:
                if c.cell_type != 'code': continue
                first = [l for l in c.source.splitlines() if l.startswith('#|')]
                if any(any(f in l.split() for f in ('cuda', 'hub', 'slow')) for l in first):
                    c.outputs = []; continue
                c.outputs = []  # execnb only replaces outputs when there are new ones
                sh.cell(c)
                if sh.exc: raise RuntimeError(f'{p.name}: cell failed:\n{c.source}\n{sh.exc}')
                c.outputs = drop_noise(c.outputs)
        finally: os.chdir(cwd)
        write_nb(nb, p)
        print('ran', p.name)

if __name__ == '__main__':
    cmd, *args = sys.argv[1:]
    {'py2nb': py2nb, 'nb2py': nb2py, 'run': run, 'quiet': quiet}[cmd](*args)
