"""What tools/docs.py (build) and tools/docs_check.py (browser check) both need: the nbdev config, the site URL, the
notebooks in sidebar order, their front matter, page names, cell directives and image outputs.

Both import this module; neither imports the other at import time (`docs.py check` calls docs_check.main lazily), so
there is no import cycle. tools/docs.py re-exports these names (`D.frontmatter`, `D.page_of`, ... keep working).
"""
import base64, contextlib, hashlib, io, os, posixpath
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROC_MD = '_md'   # our markdown lives in _proc/_md (Quarto ignores folders starting with `_`)
IMG_MIME = {'image/png': 'png', 'image/jpeg': 'jpg', 'image/svg+xml': 'svg'}

def _cfg():
    os.chdir(ROOT)
    from nbdev.config import get_config
    return get_config()

def site_url(cfg=None) -> str:
    "The published site's root URL (doc_host + doc_baseurl), as nbdev writes it into doc links."
    cfg = cfg or _cfg()
    return f"{cfg.doc_host.rstrip('/')}/{cfg.doc_baseurl.strip('/')}/".replace('//', '/').replace(':/', '://')

# ---------------------------------------------------------------------------------------------- notebooks and pages
def notebook_order(cfg=None) -> list:
    "Notebooks (paths relative to nbs/) in sidebar order, as `nbdev_sidebar` (run by `nbdev_docs`) writes them."
    import yaml
    from nbdev.quarto import nbdev_sidebar
    cfg = cfg or _cfg()
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf): nbdev_sidebar.__wrapped__(path=cfg.nbs_path, printit=True, force=True)
    out = []
    def walk(items):
        for it in items:
            if isinstance(it, str): out.append(it)
            else:
                if it.get('href'): out.append(it['href'])
                walk(it.get('contents', []))
    walk(yaml.safe_load(buf.getvalue())['website']['sidebar']['contents'])
    return [o for o in out if o.endswith('.ipynb')]

def frontmatter(nb) -> dict:
    "The YAML front matter nbdev puts in a processed notebook's first raw cell."
    import yaml
    for c in nb.cells:
        if c.cell_type == 'raw' and c.source.lstrip().startswith('---'):
            return yaml.safe_load(c.source.strip().strip('-')) or {}
    return {}

def page_of(rel:str, fm:dict) -> str:
    "Site path of a notebook's page: Quarto's `output-file` next to the notebook (`02_lora.ipynb` -> `lora.html`)."
    return posixpath.join(posixpath.dirname(rel), fm.get('output-file') or Path(rel).stem + '.html').lstrip('./')

def directives(src:str) -> dict:
    "Leading `#|` lines of a cell as a dict (`#| echo: false` -> {'echo': 'false'}, `#| hide` -> {'hide': ''})."
    d = {}
    for line in src.splitlines():
        if not line.startswith('#|'): break
        k, _, v = line[2:].strip().partition(':') if ':' in line else (line[2:].strip(), '', '')
        for w in ([k] if ':' in line else k.split()): d[w.strip()] = v.strip()
    return d

def shown(d:dict, what:str) -> bool:
    "Does Quarto show this part (`source`/`outputs`) of a cell with directives `d`?"
    if d.get('include', '') == 'false' or 'hide' in d: return False
    if what == 'source': return d.get('echo', '') != 'false'
    return d.get('output', '') != 'false'

def image_outputs(nb):
    "(bytes, ext) of every image output a reader sees (cells hidden by directives left out)."
    for c in nb.cells:
        if c.cell_type != 'code' or not shown(directives(c.source), 'outputs'): continue
        for o in c.get('outputs', []):
            for mime, ext in IMG_MIME.items():
                if mime in o.get('data', {}):
                    v = o['data'][mime]; v = ''.join(v) if isinstance(v, list) else v
                    yield (v.encode() if ext == 'svg' else base64.b64decode(v)), ext
                    break

def img_name(data:bytes, ext:str) -> str: return f'{hashlib.sha1(data).hexdigest()[:16]}.{ext}'
