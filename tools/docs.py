"""The docs site without Quarto: an offline build and a real-browser check (developer tool, not part of the package).

Users and CI with Quarto run nbdev's standard path, `nbdev_docs` (`nbs/_quarto.yml`, `nbs/nbdev.yml`, a generated
`sidebar.yml`). Quarto cannot be installed here, so `make docs` renders the *same* processed notebooks
(`nbdev.serve.proc_nbs()`: show_doc output, links, hidden cells, front matter, exactly what Quarto gets) with
mkdocs-material (settings in `tools/mkdocs.yml`):

    python tools/docs.py build                 # nbs/ -> _proc/ (nbdev) -> _proc/_md/ (markdown) -> _docs/ (HTML)
    python tools/docs.py check [--shots DIR]   # headless Chromium reads _docs/ from 127.0.0.1 and asserts on it

The glue (`nb2md`) only does what Quarto does to a processed notebook: front matter -> title, `#|` directives
(echo/output/include), outputs -> markdown/images/HTML, callouts -> admonitions, `{...}` attributes, math ->
MathML (no CDN), heading ids as pandoc makes them, doc links to the site -> relative links. Page names and sidebar
order are nbdev's own (`output-file`, `nbdev_sidebar`), so new notebooks appear with no change here.

Imports go one way: docs.py -> docs_check.py (only for `check`) -> docs_common.py (config, sidebar order, front matter,
page names, directives, image outputs; re-exported here); docs_check never imports docs.
"""
import base64, html, os, posixpath, re, shutil, subprocess, sys, time, warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from docs_common import (ROOT, PROC_MD, IMG_MIME, _cfg, site_url, notebook_order, frontmatter, page_of, directives,
                         shown, image_outputs, img_name)   # shared with docs_check.py (no cycle: both import docs_common)

# ------------------------------------------------------------------------------------------- markdown conversion
_FENCE = re.compile(r'^([ \t]*)(`{3,}|~{3,})[^\n]*\n.*?^\1\2[ \t]*$', re.M | re.S)
_CODE = re.compile(r'(`+)(?!`).+?(?<!`)\1(?!`)', re.S)
_MATH_BLOCK = re.compile(r'\$\$(.+?)\$\$', re.S)
_MATH_INLINE = re.compile(r'(?<![\\$\w])\$(?![\s$])([^$\n]+?)(?<![\s\\])\$(?![\w$])')
# nbdev's `add_links` runs `link_line` on every line of a show_doc output, so docments comments inside the signature
# block come out as [`sym`](https://...): in a code block that is raw text (on Quarto too); give back the source's `sym`
_CODE_LINK = re.compile(r'\[(`[^`\n]+`)\]\(https?://[^)\s]*\)')
_HEADING = re.compile(r'^(#{1,6})[ \t]+(.+?)[ \t]*$', re.M)
_CALLOUT = {'note': 'note', 'tip': 'tip', 'warning': 'warning', 'caution': 'warning', 'important': 'danger'}

def pandoc_id(text:str) -> str:
    "Heading id as pandoc/Quarto make it (nbdev's doc links point at these): `LoRALinear.forward` -> `loralinear.forward`."
    t = re.sub(r'\[([^\]]*)\]\([^)]*\)', r'\1', text)
    t = re.sub(r'<[^>]+>|[`*]', '', t)
    t = re.sub(r'[^\w\s.-]', '', t, flags=re.A).strip().lower()
    t = re.sub(r'\s+', '-', t)
    t = re.sub(r'^[^a-z]+', '', t)
    return t or 'section'

def _callouts(text:str, gfm:bool=False) -> str:
    "Quarto `::: {.callout-note}` blocks -> mkdocs admonitions (GitHub: `> [!NOTE]` alerts); other `:::` divs are unwrapped."
    out, stack, fence = [], [], None
    for line in text.split('\n'):
        s = line.strip()
        m = re.match(r'(`{3,}|~{3,})', s)
        if m and (fence is None or s.startswith(fence)): fence = None if fence else m.group(1)
        ind = ('> ' if gfm else '    ') * sum(stack)
        if fence is None and s.startswith(':::'):
            m = re.match(r':::+\s*\{?\s*\.callout-(\w+)([^}]*)\}?', s)
            if m:
                t = re.search(r'title="([^"]*)"', m.group(2))
                if gfm: out.append(f'{ind}> [!{m.group(1).upper()}]' + (f'\n{ind}> **{t.group(1)}**' if t else ''))
                else: out += [f'{ind}!!! {_CALLOUT.get(m.group(1), "note")}' + (f' "{t.group(1)}"' if t else ''), '']
                stack.append(True)
            elif s.strip(':').strip(): stack.append(False)   # another div: keep the content, drop the fence
            elif stack: stack.pop()
            continue
        out.append(ind + line if line.strip() or gfm else line)
    return '\n'.join(out)

def _math(tex:str, display:bool) -> str:
    from latex2mathml.converter import convert
    try:   # <math> is block-level for Python-Markdown: a span keeps inline math inside its paragraph
        m = convert(tex.strip(), display='block' if display else 'inline')
        return m if display else f'<span class="math">{m}</span>'
    except Exception as e:
        warnings.warn(f'docs: cannot convert math {tex!r} ({e}); left as code')
        return f'<code>{html.escape(tex)}</code>'

def md_text(text:str, page:str, site:str, rel_links:bool=True, ids:set=None, gfm:bool=False) -> str:
    "Markdown from a notebook (cell or show_doc output) -> markdown mkdocs renders like Quarto does (`gfm`: for GitHub)."
    text = _callouts(text, gfm)
    stash = []
    def keep(s): stash.append(s); return f'\x00{len(stash)-1}\x00'
    text = _FENCE.sub(lambda m: keep(_CODE_LINK.sub(r'\1', m.group(0))), text)
    text = _CODE.sub(lambda m: keep(m.group(0)), text)
    if not gfm:   # GitHub renders $...$ itself
        text = _MATH_BLOCK.sub(lambda m: keep('\n\n' + _math(m.group(1), True) + '\n\n'), text)
        text = _MATH_INLINE.sub(lambda m: keep(_math(m.group(1), False)), text)
    if rel_links:   # doc links nbdev made to the published site -> this site, checked by mkdocs
        def rel(m):
            path, _, frag = m.group(1).partition('#')
            md = re.sub(r'\.html$', '.md', path or 'index.html')
            return '](' + posixpath.relpath(md, posixpath.dirname(page) or '.') + ('#' + frag if frag else '') + ')'
        text = re.sub(r'\]\(' + re.escape(site) + r'([^)\s]*)\)', rel, text)
    def head(m):
        if m.group(2).endswith('}'): return m.group(0)
        i = base = pandoc_id(m.group(2).replace('\x00', ''))
        if ids is not None:
            n = 0
            while i in ids: n += 1; i = f'{base}-{n}'
            ids.add(i)
        return f'{m.group(1)} {m.group(2)} {{#{i}}}'
    if not gfm: text = _HEADING.sub(head, text)
    while '\x00' in text: text = re.sub(r'\x00(\d+)\x00', lambda m: stash[int(m.group(1))], text)
    return text

def _fence(text:str, lang:str, cls:str='') -> str:
    n = max([3] + [len(x) + 1 for x in re.findall(r'`{3,}', text)])
    attrs = f'{{.{lang} .{cls}}}' if cls else lang
    return f"{'`'*n}{attrs}\n{text.rstrip()}\n{'`'*n}"

def nb2md(nb, page:str, files:Path=None, files_url:str=None, gfm:bool=False, cfg=None) -> str:
    "A processed notebook as one markdown page (title, subtitle, cells, outputs); images are written to `files`."
    cfg = cfg or _cfg(); site = site_url(cfg); rel_links = not gfm
    fence = (lambda t, lang, cls='': _fence(t, lang)) if gfm else _fence
    fm, ids, parts = frontmatter(nb), set(), []
    if fm.get('title'): parts.append(f"# {fm['title']}")
    if fm.get('description'): parts.append('> ' + md_text(' '.join(str(fm['description']).split()), page, site, rel_links, gfm=gfm))
    for c in nb.cells:
        if c.cell_type == 'markdown': parts.append(md_text(c.source, page, site, rel_links, ids, gfm))
        if c.cell_type != 'code': continue
        d = directives(c.source)
        src = '\n'.join(l for l in c.source.splitlines() if not l.startswith('#|')).strip()
        if shown(d, 'source') and src: parts.append(fence(src, 'python'))
        if not shown(d, 'outputs'): continue
        stream = []
        for o in c.get('outputs', []):
            if o.output_type == 'stream': stream.append(''.join(o.text)); continue
            if stream: parts.append(fence(''.join(stream), 'text', 'cell-output')); stream = []
            if o.output_type == 'error':
                parts.append(fence(re.sub(r'\x1b\[[0-9;]*m', '', '\n'.join(o.traceback)), 'text', 'cell-output')); continue
            data = {k: (''.join(v) if isinstance(v, list) else v) for k, v in o.get('data', {}).items()}
            img = next((m for m in IMG_MIME if m in data), None)
            if img:
                raw = data[img].encode() if img == 'image/svg+xml' else base64.b64decode(data[img])
                name = img_name(raw, IMG_MIME[img])
                if files is not None: files.mkdir(parents=True, exist_ok=True); (files/name).write_bytes(raw)
                parts.append(f'![]({files_url}/{name})' + ('' if gfm else '{ .cell-figure }'))
            elif 'text/markdown' in data: parts.append(md_text(data['text/markdown'], page, site, rel_links, ids, gfm))
            elif 'text/html' in data: parts.append(f'<div class="cell-output-html" markdown="0">\n{data["text/html"].strip()}\n</div>')
            elif 'text/plain' in data: parts.append(fence(data['text/plain'], 'text', 'cell-output'))
        if stream: parts.append(fence(''.join(stream), 'text', 'cell-output'))
    return '\n\n'.join(p.strip('\n') for p in parts if p.strip()) + '\n'

def docs_run_problems(cfg=None) -> list:
    "Cells nbdev's docs processor (`exec_show_docs`) would run and that mix imports with other code, or call main()."
    import ast
    from execnb.nbio import read_nb
    from nbdev.doclinks import nbglob
    cfg = cfg or _cfg(); out = []
    for p in sorted(nbglob(cfg.nbs_path)):
        for c in read_nb(p).cells:
            if c.cell_type != 'code': continue
            d = directives(c.source)
            if d.get('eval', '') == 'false': continue
            code = '\n'.join(l for l in c.source.splitlines() if not l.lstrip().startswith(('%', '!')))
            try: tree = ast.parse(code)
            except SyntaxError: continue
            nodes = list(ast.walk(tree))
            first = next((l for l in c.source.splitlines() if l.strip() and not l.startswith('#|')), '')[:70]
            where = f'{Path(p).relative_to(cfg.nbs_path)}: cell `{first}`'
            if d.keys() & {'export', 'exports', 'exporti', 'exec_doc'}:
                if any(isinstance(n, ast.If) and ast.unparse(n.test).replace('"', "'") == "__name__ == '__main__'" for n in tree.body):
                    out.append(f"{where}: `if __name__ == '__main__'` is true while docs are built; add `#| eval: false`")
            elif any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in nodes) and any(isinstance(n, (ast.Expr, ast.Assign)) for n in nodes):
                out.append(f'{where}: imports mixed with code: nbdev runs this cell while building docs, without the '
                           'cells before it (nbdev FAQ); move the import to the imports cell')
    return out

def process_one(nb_path:Path):
    "One notebook through nbdev's docs processors in this process (what `proc_nbs` does in a worker)."
    from execnb.nbio import read_nb
    from nbdev.processors import FilterDefaults
    nb = read_nb(nb_path)
    os.environ['IN_TEST'] = '1'
    try: FilterDefaults()(nb)
    finally: del os.environ['IN_TEST']
    return nb

# ------------------------------------------------------------------------------------------------------- build
def build(out:str=None, n_workers:int=2) -> Path:
    "nbs/ -> `proc_nbs()` -> markdown -> mkdocs-material HTML in `out` (default: settings.ini doc_path, `_docs/`)."
    import yaml
    from execnb.nbio import read_nb
    from nbdev.serve import proc_nbs
    cfg = _cfg(); t0 = time.time()
    probs = docs_run_problems(cfg)
    for pr in probs: print('docs: warning:', pr)
    os.environ['PYTHONWARNINGS'] = 'ignore::UserWarning'   # nbdev's workers: the cells it warns about are listed above
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            proc = Path(proc_nbs(n_workers=n_workers))
    except Exception as e:
        msg = str(e).strip().splitlines()
        raise SystemExit('docs: nbdev could not process a notebook for the docs (the same error breaks `nbdev_docs`):\n  '
                         + '\n  '.join(msg[:6]) + '\n  hint: keep imports in a cell of their own (nbdev FAQ) and give '
                         'cells that must not run while docs are built `#| eval: false`; suspects:\n  ' + '\n  '.join(probs))
    t1 = time.time()
    md_root = proc/PROC_MD; shutil.rmtree(md_root, ignore_errors=True)
    docs = md_root/'docs'; docs.mkdir(parents=True)
    nav, sections = [], {}
    for rel in notebook_order(cfg):
        nb = read_nb(proc/rel); fm = frontmatter(nb); page = page_of(rel, fm)
        mdp = docs/re.sub(r'\.html$', '.md', page)
        stem = Path(page).stem
        mdp.parent.mkdir(parents=True, exist_ok=True)
        mdp.write_text(nb2md(nb, page, mdp.parent/f'{stem}_files', f'{stem}_files', cfg=cfg), encoding='utf-8')
        entry = {fm.get('title') or stem: str(mdp.relative_to(docs))}
        folder = str(Path(rel).parent)
        if folder == '.': nav.append(entry)
        else:
            if folder not in sections:
                sections[folder] = []
                nav.append({re.sub(r'^\d+_', '', Path(folder).name).replace('_', ' ').capitalize(): sections[folder]})
            sections[folder].append(entry)
    shutil.copy(cfg.nbs_path/'styles.css', docs/'styles.css')
    site = Path(out) if out else cfg.doc_path
    conf = {'INHERIT': str(ROOT/'tools'/'mkdocs.yml'), 'site_name': cfg.title, 'site_description': cfg.description,
            'site_url': site_url(cfg), 'docs_dir': 'docs', 'site_dir': str(site.resolve()), 'nav': nav}
    (md_root/'mkdocs.yml').write_text(yaml.safe_dump(conf, sort_keys=False, allow_unicode=True), encoding='utf-8')
    r = subprocess.run([sys.executable, '-m', 'mkdocs', 'build', '--clean', '-q', '-f', str(md_root/'mkdocs.yml')],
                       capture_output=True, text=True, env={**os.environ, 'NO_MKDOCS_2_WARNING': '1'})
    log = [l for l in (r.stdout + r.stderr).splitlines() if l.strip() and 'MkDocs 2.0' not in l]
    if r.returncode: raise SystemExit('docs: mkdocs build failed:\n' + '\n'.join(log))
    for l in log: print('docs:', l)
    print(f'docs: {len(list(docs.rglob("*.md")))} pages -> {site}/ (nbdev proc_nbs {t1-t0:.1f}s, markdown + mkdocs '
          f'{time.time()-t1:.1f}s); open {site}/index.html or `python -m http.server -d {site}`')
    return site

if __name__ == '__main__':
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest='cmd', required=True)
    b = sub.add_parser('build', help='build the site offline into _docs/')
    b.add_argument('--out', default=None); b.add_argument('--workers', type=int, default=2)
    c = sub.add_parser('check', help='check the built site in headless Chromium')
    c.add_argument('--site', default=None); c.add_argument('--shots', default=None, help='folder for screenshots')
    a = ap.parse_args()
    if a.cmd == 'build': build(a.out, a.workers)
    else:
        from docs_check import main as check_main   # one way only: docs_check imports docs_common, never docs
        sys.exit(check_main(a.site, a.shots))
