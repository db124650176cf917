"The docs glue (tools/docs.py, tools/readme.py): README in step with index.ipynb, and Quarto markdown rendered cleanly."
import json, re, sys, warnings
from pathlib import Path
import markdown, pytest, yaml
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT/'tools'))
import docs as D

def render(md:str) -> str:
    "HTML from markdown with the extensions of tools/mkdocs.yml (the offline engine's own parser)."
    cfg = yaml.safe_load((ROOT/'tools'/'mkdocs.yml').read_text())
    exts = [e if isinstance(e, str) else next(iter(e)) for e in cfg['markdown_extensions']]
    return markdown.Markdown(extensions=exts).convert(md)

def test_readme_in_sync():
    import readme
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        new = readme.readme_text()
    assert (ROOT/'README.md').read_text(encoding='utf-8') == new, 'README.md is stale: run `python tools/readme.py`'
    assert new.index('## Two commands') < new.index('\n## ', new.index('## Two commands') + 1), '"Two commands" must come first'

def test_pandoc_ids():
    "Anchors match Quarto's, so nbdev's doc links (`lora.html#loralinear.forward`) land."
    for text, want in [('LoRALinear.forward', 'loralinear.forward'), ('lm_family', 'lm_family'),
                       ('Two commands', 'two-commands'), ('`caption_loss`', 'caption_loss'), ('1. Set-up!', 'set-up'),
                       ('[LoRA](https://x.y/z)', 'lora'), ('???', 'section')]:
        assert D.pandoc_id(text) == want, text

def test_show_doc_markdown_renders_without_quarto_leaks():
    site = D.site_url()
    src = (f'---\n\n[source](https://github.com/a/b.py#L3){{target="_blank" style="float:right; font-size:smaller"}}\n\n'
           f'### LoRALinear.forward\n\n```python\ndef forward(\n    x, # (B, n, d) input, see [`LoRALinear`]({site}lora.html#loralinear)\n):\n```\n\n'
           f'*See [`lora_config`]({site}lora.html#lora_config) and $h = W_0x + \\frac{{\\alpha}}{{r}}BAx$.*\n\n'
           '$$\\Delta W = BA$$\n\n::: {.callout-note}\nA note with `::: code` inside.\n:::\n\n'
           '```python\n#| echo: false\nprice = "$5 and $6"\n```')
    md = D.md_text(src, 'tutorials/x.html', site)
    html = render(md)
    assert 'id="loralinear.forward"' in html
    assert '<a href="https://github.com/a/b.py#L3" style="float:right; font-size:smaller" target="_blank">source</a>' in html
    assert 'href="../lora.md#lora_config"' in html               # site link -> relative (mkdocs makes it .html)
    assert html.count('<math') == 2 and 'display="block"' in html
    assert '<div class="admonition note">' in html and '<code>::: code</code>' in html
    assert '"$5 and $6"' in html and '#| echo: false\nprice' in md   # code blocks are left alone ...
    assert '# (B, n, d) input, see `LoRALinear`\n' in md             # ... but for nbdev's links in signatures (raw text there)
    text = re.sub(r'<div class="highlight">.*?</div>', '', html.replace('<code>::: code</code>', ''), flags=re.S)
    assert 'A note with' in text and 'source</a>' in text
    for bad in ('{target=', ':::', '{.callout', '$$'): assert bad not in text, bad

def test_cells_and_outputs():
    "Directives decide what shows; figures are written as files; markdown outputs are inlined (show_doc)."
    from execnb.nbio import dict2nb
    png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=='
    cell = lambda src, outs=(): dict(cell_type='code', source=src, metadata={}, outputs=list(outs), execution_count=None)
    nb = dict2nb(dict(metadata={}, nbformat=4, nbformat_minor=5, cells=[
        dict(cell_type='raw', metadata={}, source='---\ntitle: T\ndescription: D `x`\noutput-file: t.html\n---\n'),
        cell('#| echo: false\n#| output: asis\nshow_doc(f)', [dict(output_type='execute_result', metadata={},
              data={'text/markdown': '### f\n\n*doc*', 'text/plain': 'f'}, execution_count=None)]),
        cell('plt.plot([1])', [dict(output_type='stream', name='stdout', text='hi\n'),
                               dict(output_type='display_data', metadata={}, data={'image/png': png, 'text/plain': '<Figure>'})]),
        cell('#| include: false\nsecret = 1', [dict(output_type='stream', name='stdout', text='hidden\n')]),
        cell('#| output: false\nshown_src()', [dict(output_type='stream', name='stdout', text='dropped\n')])]))
    import tempfile
    with tempfile.TemporaryDirectory() as td:
        md = D.nb2md(nb, 't.html', Path(td)/'t_files', 't_files')
        files = list((Path(td)/'t_files').iterdir())
    assert D.frontmatter(nb)['output-file'] == 't.html' and D.page_of('sub/01_t.ipynb', D.frontmatter(nb)) == 'sub/t.html'
    assert md.startswith('# T\n\n> D `x`\n\n### f {#f}\n\n*doc*\n\n```python\nplt.plot([1])\n```')
    assert 'show_doc' not in md and 'secret' not in md and 'hidden' not in md and 'dropped' not in md and 'shown_src()' in md
    assert [f.name for f in files] == [D.img_name(*next(D.image_outputs(nb)))] and f'![](t_files/{files[0].name})' in md
    assert 'hi' in md and '#|' not in md

def test_every_notebook_in_the_sidebar():
    "nbdev's sidebar order covers every notebook nbdev processes, index first; page names are unique."
    from nbdev.doclinks import nbglob
    from nbdev.config import get_config
    order = D.notebook_order()
    nbs = get_config().nbs_path
    found = sorted(str(Path(p).relative_to(nbs)) for p in nbglob(nbs))
    assert sorted(order) == found and order[0] == 'index.ipynb'

def test_notebooks_can_be_processed_for_docs():
    "STYLE.md: imports in a cell of their own. nbdev's docs build runs import cells alone, so code mixed in breaks it."
    bad = D.docs_run_problems()
    assert not bad, '\n'.join(bad)

def test_docs_tools_import_no_cycle():
    "tools/docs.py, docs_check.py and docs_common.py import each other one way only (imports inside functions count too)."
    import ast
    mods = {p.stem: p for p in (ROOT/'tools').glob('docs*.py')}
    deps = {m: {a.name.split('.')[0] for n in ast.walk(ast.parse(p.read_text(encoding='utf-8')))
                if isinstance(n, ast.Import) for a in n.names} |
               {n.module.split('.')[0] for n in ast.walk(ast.parse(p.read_text(encoding='utf-8')))
                if isinstance(n, ast.ImportFrom) and n.module}
            for m, p in mods.items()}
    deps = {m: d & set(mods) - {m} for m, d in deps.items()}
    assert deps['docs_common'] == set() and 'docs' not in deps['docs_check'], deps
    def reach(m, seen=()):
        return set().union(*[{d} | reach(d, seen + (m,)) for d in deps[m] if d not in seen]) if deps[m] else set()
    assert not [m for m in mods if m in reach(m)], deps
    from docs_check import Chrome, find_chromium   # tests/test_app.py drives the Gradio page with it
    assert callable(Chrome) and D.frontmatter is __import__('docs_common').frontmatter

NOISE = re.compile(r'site-packages/.*(Warning|warn)|kernels-community|\x1b\[A|Traceback \(most recent call last\)')

def test_no_library_noise_in_stored_outputs():
    "A reader sees the cell's result, not a library's deprecation warnings, kernel notices or tqdm redraws: filter them in the notebook's setup cell (issue 16)."
    bad = []
    for p in sorted((ROOT/'nbs').rglob('*.ipynb')):
        for i, c in enumerate(json.loads(p.read_text(encoding='utf-8'))['cells']):
            for o in c.get('outputs', []):
                text = ''.join(o.get('text', '')) if o.get('output_type') == 'stream' else ''
                if (m := NOISE.search(text)): bad.append(f'{p.relative_to(ROOT)} cell {i}: {text[max(0, m.start() - 60):m.end() + 60]!r}')
    assert not bad, '\n'.join(bad)
