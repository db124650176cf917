"""Replace exact text in a notebook's cell sources, keeping outputs:  python tools/nbsub.py NB.ipynb SUBS.py
SUBS.py defines SUBS = [(old, new), ...]; each `old` must occur exactly once in the notebook."""
import json, sys, runpy
nb_path, subs_path = sys.argv[1:3]
nb = json.load(open(nb_path, encoding='utf-8'))
for old, new in runpy.run_path(subs_path)['SUBS']:
    hits = [c for c in nb['cells'] if old in ''.join(c['source'])]
    if len(hits) != 1: raise SystemExit(f'{len(hits)} cells contain {old[:60]!r}')
    c = hits[0]; src = ''.join(c['source'])
    if src.count(old) != 1: raise SystemExit(f'{old[:60]!r} occurs {src.count(old)} times in one cell')
    c['source'] = src.replace(old, new).splitlines(True)
open(nb_path, 'w', encoding='utf-8').write(json.dumps(nb, indent=1, ensure_ascii=False) + '\n')
