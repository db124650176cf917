"""Check the built docs site in a real browser: headless Chromium, driven over the DevTools protocol on a pipe.

    python tools/docs.py check [--site _docs] [--shots DIR]

Serves the site on 127.0.0.1 and asserts, page by page: every notebook has a page (title = its front matter); the
home page holds the README's content; every exported function/class of `blip2_lora` appears on its page (anchor,
signature, docstring); every image output stored in a notebook is on its page and decodes; no raw `#|`,
`{target=...}`, `:::`, `{.class}` or `$$` fragments; the sidebar lists the notebooks in nbdev's order; no console
error, uncaught exception or failed load. Without Chromium it prints a loud SKIPPED line and exits 0.
"""
import ast, base64, functools, http.server, importlib, json, os, posixpath, queue, re, shutil, subprocess
import sys, tempfile, threading, time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
import docs_common as D   # not docs: docs.py runs this module for `check`, so importing it back would be a cycle

FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
         '--no-first-run', '--disable-sync', '--disable-dev-shm-usage', '--hide-scrollbars', '--window-size=1280,900']
INSTALL_HINT = 'install it with `sudo apt-get install chromium` (Debian/Ubuntu) or set CHROMIUM=/path/to/chrome'
LEAKS = {'raw #| directive': r'(?m)^\s*#\|\s*[\w-]', 'Quarto {target=...}': r'\{target=', 'Quarto ::: div': r':::',
         'Quarto {.class} attribute': r'\{\.[A-Za-z]', 'unrendered $$ math': r'\$\$',
         'markdown link as code text': r'\[`[^`\n]+`\]\(https?://'}

def find_chromium():
    for c in (os.environ.get('CHROMIUM'), 'chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'):
        if c and shutil.which(c): return shutil.which(c)

class Chrome:
    "Headless Chromium with the DevTools protocol on fds 3/4 (`--remote-debugging-pipe`): no websocket, no extra package."
    def __init__(self, exe:str):
        self.tmp = tempfile.mkdtemp(prefix='docs-chromium-')
        to_c, self._w = os.pipe()          # we write commands, Chromium reads fd 3
        self._r, from_c = os.pipe()        # Chromium writes fd 4, we read
        def fds():   # child: our pipe ends may already sit on fd 3/4, so move them out of the way first
            a, b = os.dup(to_c), os.dup(from_c); os.dup2(a, 3); os.dup2(b, 4)
        self.p = subprocess.Popen([exe, *FLAGS, f'--user-data-dir={self.tmp}', '--remote-debugging-pipe', 'about:blank'],
                                  preexec_fn=fds, close_fds=False, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_c); os.close(from_c)
        self.q, self.events, self.n = queue.Queue(), [], 0
        threading.Thread(target=self._read, daemon=True).start()
        tid = self.call('Target.createTarget', url='about:blank')['targetId']
        self.sid = self.call('Target.attachToTarget', targetId=tid, flatten=True)['sessionId']
        for d in ('Page', 'Runtime', 'Log'): self.call(f'{d}.enable', session=True)
        self.call('Emulation.setDeviceMetricsOverride', session=True, width=1280, height=900, deviceScaleFactor=1, mobile=False)

    def _read(self):
        buf = b''
        with os.fdopen(self._r, 'rb', buffering=0) as f:
            while chunk := f.read(65536):
                buf += chunk
                *msgs, buf = buf.split(b'\0')
                for m in msgs: self.q.put(json.loads(m))

    def call(self, method, session=False, timeout=30, **params):
        self.n += 1; i = self.n
        msg = {'id': i, 'method': method, 'params': params}
        if session: msg['sessionId'] = self.sid
        os.write(self._w, json.dumps(msg).encode() + b'\0')
        end = time.time() + timeout
        while time.time() < end:
            try: m = self.q.get(timeout=max(0.01, end - time.time()))
            except queue.Empty: break
            if m.get('id') == i:
                if 'error' in m: raise RuntimeError(f'{method}: {m["error"]}')
                return m.get('result', {})
            self.events.append(m)
        raise TimeoutError(f'Chromium did not answer {method} in {timeout}s')

    def wait_event(self, name, timeout=20):
        end = time.time() + timeout
        while time.time() < end:
            if any(e.get('method') == name for e in self.events): return True
            try: self.events.append(self.q.get(timeout=0.05))
            except queue.Empty: pass
        return False

    def open(self, url):
        "Navigate, wait for `load`, let late scripts run; returns the console errors of this page."
        self.events = []
        r = self.call('Page.navigate', session=True, url=url)
        if r.get('errorText'): return [f'navigation failed: {r["errorText"]}']
        if not self.wait_event('Page.loadEventFired'): return ['page did not finish loading in 20 s']
        self.wait_event('__settle__', timeout=0.4)
        errs = []
        for e in self.events:
            m, p = e.get('method'), e.get('params', {})
            if m == 'Runtime.exceptionThrown':
                d = p['exceptionDetails']; errs.append(f"exception: {d.get('exception', {}).get('description') or d.get('text')}")
            elif m == 'Runtime.consoleAPICalled' and p.get('type') in ('error', 'assert'):
                errs.append('console.error: ' + ' '.join(str(a.get('value', a.get('description', ''))) for a in p.get('args', [])))
            elif m == 'Log.entryAdded' and p['entry'].get('level') == 'error':
                errs.append(f"{p['entry'].get('source')}: {p['entry'].get('text')} {p['entry'].get('url', '')}".strip())
        return errs

    def eval(self, js):
        r = self.call('Runtime.evaluate', session=True, expression=js, returnByValue=True, awaitPromise=True)
        if 'exceptionDetails' in r: raise RuntimeError(r['exceptionDetails'])
        return r['result'].get('value')

    def screenshot(self, path, full=False):
        r = self.call('Page.captureScreenshot', session=True, format='png', captureBeyondViewport=full)
        Path(path).write_bytes(base64.b64decode(r['data']))

    def close(self):
        try: self.call('Browser.close', timeout=5)
        except Exception: pass
        try: self.p.wait(timeout=10)
        except subprocess.TimeoutExpired: self.p.kill(); self.p.wait()
        os.close(self._w); shutil.rmtree(self.tmp, ignore_errors=True)

PAGE_JS = r"""(() => {
  const art = document.querySelector('article') || document.body;
  const prim = document.querySelector('nav.md-nav--primary');
  const nav = prim ? [...prim.querySelectorAll('a.md-nav__link')].filter(a => !a.closest('.md-nav--secondary'))
                       .map(a => a.href).filter(h => !h.includes('#')) : [];
  return {title: document.title, h1: (art.querySelector('h1') || {}).innerText || '', text: art.innerText,
          ids: [...art.querySelectorAll('[id]')].map(e => e.id), pre: [...art.querySelectorAll('pre')].map(e => e.innerText),
          imgs: [...art.querySelectorAll('img')].map(i => ({src: i.currentSrc || i.src, ok: i.complete && i.naturalWidth > 0})),
          nav: nav.filter((h, i) => nav.indexOf(h) === i)};
})()"""

SCROLL_JS = r"""(() => {
  const hs = %s.map(a => document.getElementById(a)).filter(Boolean), y = e => e.getBoundingClientRect().top + scrollY;
  const figs = [...document.querySelectorAll('article img')].map(y);
  const gap = h => Math.min(...figs.filter(f => f > y(h)).map(f => f - y(h)), 1e9);
  const best = hs.sort((a, b) => gap(a) - gap(b))[0];
  if (best) window.scrollTo(0, y(best) - 70);
  return true;
})()"""

def _norm(s): return ' '.join(re.sub(r'[`*_]', '', re.sub(r'\[([^\]]*)\]\([^)]*\)', r'\1', s)).split())

def expected(cfg):
    "What the site must show, read from the notebooks and the package (not from the build)."
    from execnb.nbio import read_nb
    pages = []
    for rel in D.notebook_order(cfg):
        src = read_nb(cfg.nbs_path/rel)
        proc = read_nb(cfg.config_path/'_proc'/rel) if (cfg.config_path/'_proc'/rel).exists() else None
        fm = D.frontmatter(proc) if proc else {}
        title = fm.get('title') or next((l[2:].strip() for c in src.cells if c.cell_type == 'markdown'
                                          for l in c.source.splitlines() if l.startswith('# ')), Path(rel).stem)
        page = D.page_of(rel, fm) if fm else None
        imgs = [D.img_name(b, e) for b, e in D.image_outputs(src)]
        pages.append(dict(nb=rel, page=page, title=title, imgs=imgs))
    syms = {}   # read from the source (ast), not imported: no torch import, and the same answer
    mi = importlib.import_module(f'{cfg.lib_path.name}._modidx').d['syms']
    for mod, entries in mi.items():
        f = cfg.lib_path/(mod.split('.', 1)[1].replace('.', '/') + '.py')
        if not f.exists(): continue
        tree = ast.parse(f.read_text(encoding='utf-8'))
        names = next((ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)
                      and any(getattr(t, 'id', '') == '__all__' for t in n.targets)), [])
        defs = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
        for name in names:
            url = entries.get(f'{mod}.{name}', (None,))[0]
            if name not in defs or not url: continue
            doc = (ast.get_docstring(defs[name]) or '').strip().splitlines()
            page, _, anchor = url.partition('#')
            syms.setdefault(page, []).append(dict(name=name, anchor=anchor, doc=doc[0] if doc else ''))
    return pages, syms

def readme_lines(cfg):
    "Text lines of README.md that the home page must show (markup stripped)."
    out, fence = [], False
    for l in (cfg.config_path/'README.md').read_text(encoding='utf-8').splitlines():
        if l.strip().startswith('```'): fence = not fence; continue
        if not fence and (l.startswith('<!--') or l.startswith('![')): continue
        l = re.sub(r'!\[[^\]]*\]\([^)]*\)', '', l)
        l = re.sub(r'\[([^\]]*)\]\([^)]*\)', r'\1', l)
        l = re.sub(r'<[^>]+>', '', l) if not fence else l
        l = l if fence else re.sub(r'^\s*(#+|>|[-*+]|\d+\.)\s+', '', l).replace('|', ' ')
        if len(_norm(l)) > 3 and not re.fullmatch(r'[\s:|-]+', l): out.append(_norm(l))
    return out

def main(site=None, shots=None) -> int:
    cfg = D._cfg()
    site = Path(site) if site else cfg.doc_path
    exe = find_chromium()
    if not exe:
        print('\n' + '!' * 100 + f'\nSKIPPED: docs browser check: no Chromium found; {INSTALL_HINT}\n' + '!' * 100 + '\n')
        return 0
    if not (site/'index.html').exists(): print(f'docs check: {site}/index.html missing: run `make docs` first'); return 1
    t0 = time.time()
    pages, syms = expected(cfg)
    try: br = Chrome(exe)   # first: it forks with preexec_fn, which wants no other threads running yet
    except Exception as e:
        print(f'docs check: {exe} did not start headless ({e!r}); run it by hand with the flags in tools/docs_check.py')
        return 1
    handler = functools.partial(type('H', (http.server.SimpleHTTPRequestHandler,), {'log_message': lambda *a: None}),
                                directory=str(site))
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = f'http://127.0.0.1:{srv.server_address[1]}/'
    fails, n_sym, n_img, notes = [], 0, 0, set()
    def fail(page, msg): fails.append(f'{page}: {msg}')
    want_nav = [base + p['page'] for p in pages if p['page']]
    api_page = next((p['page'] for p in pages if p['page'] in syms and p['imgs']), None) or \
               next((p['page'] for p in pages if p['page'] in syms), None)   # screenshot: an API page with a figure
    try:
        for p in pages:
            if not p['page']: fail(p['nb'], 'not processed by nbdev (no _proc/ copy): run `make docs`'); continue
            errs = br.open(base + p['page'])
            ext = [e for e in errs if e.startswith('network:') and not e.split()[-1].startswith(base)]
            notes.update(e.split()[-1] for e in ext)   # e.g. a Colab badge: on the web, not on 127.0.0.1
            for e in errs:
                if e not in ext: fail(p['page'], e)
            if any(e.startswith('navigation failed') for e in errs): continue
            r = br.eval(PAGE_JS)
            if r['title'].startswith('404') or not r['h1']: fail(p['page'], f'no page for {p["nb"]} (title {r["title"]!r})'); continue
            if _norm(r['h1']).rstrip('¶').strip() != _norm(p['title']): fail(p['page'], f'h1 {r["h1"]!r} != notebook title {p["title"]!r}')
            text = _norm(r['text'])
            for what, rx in LEAKS.items():
                m = re.search(rx, r['text'])
                if m: fail(p['page'], f'{what} leaks: ...{r["text"][max(0, m.start()-40):m.end()+40]!r}...')
            if r['nav'] != want_nav: fail(p['page'], f'sidebar order {[urlsplit(u).path for u in r["nav"]]} != {[urlsplit(u).path for u in want_nav]}')
            loaded = {posixpath.basename(urlsplit(i['src']).path): i['ok'] for i in r['imgs']}
            for name in p['imgs']:
                n_img += 1
                if not loaded.get(name): fail(p['page'], f'figure {name} from {p["nb"]} ' + ('does not load' if name in loaded else 'missing'))
            for s in syms.get(p['page'], []):
                n_sym += 1
                if s['anchor'] not in r['ids']: fail(p['page'], f'{s["name"]}: no #{s["anchor"]} anchor (show_doc missing?)')
                if not any(re.search(rf'\b(def|class)\s+{re.escape(s["name"])}\b', t) for t in r['pre']): fail(p['page'], f'{s["name"]}: no signature')
                if not s['doc']: fail(p['page'], f'{s["name"]}: has no docstring')
                elif _norm(s['doc']) not in text: fail(p['page'], f'{s["name"]}: docstring {s["doc"]!r} not shown')
            if p['page'] == 'index.html':
                missing = [l for l in readme_lines(cfg) if l not in text]
                if missing: fail('index.html', f'README content missing from the home page: {missing[:3]}')
                if shots: Path(shots).mkdir(parents=True, exist_ok=True); br.screenshot(Path(shots)/'home.png')
            if shots and p['page'] == api_page:   # scroll to the show_doc entry closest above a figure, if any
                br.call('Emulation.setDeviceMetricsOverride', session=True, width=1280, height=1500, deviceScaleFactor=1, mobile=False)
                br.eval(SCROLL_JS % json.dumps([s['anchor'] for s in syms[api_page]])); time.sleep(0.8)   # header animation
                br.screenshot(Path(shots)/'api.png')
                br.call('Emulation.setDeviceMetricsOverride', session=True, width=1280, height=900, deviceScaleFactor=1, mobile=False)
        for page in set(syms) - {p['page'] for p in pages}: fail(page, f'exported symbols {[s["name"] for s in syms[page]]} have no page')
    finally:
        br.close(); srv.shutdown()
    print(f'docs check (headless {Path(exe).name}, {base}): {len(pages)} pages, {n_sym} API symbols, {n_img} figures, '
          f'{len(fails)} problems, {time.time()-t0:.1f}s' + (f'; screenshots in {shots}/' if shots else ''))
    for n in sorted(notes): print('  note: external resource not reachable offline (not checked):', n)
    for f in fails: print('  FAIL', f)
    return 1 if fails else 0

if __name__ == '__main__': sys.exit(main(*sys.argv[1:3]))
