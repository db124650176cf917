"""README.md from nbs/index.ipynb without Quarto (with Quarto, `nbdev_readme` does it).

    python tools/readme.py           # write README.md
    python tools/readme.py --check   # exit 1 if README.md differs from what index.ipynb gives (tests/test_docs.py)

Same path as the docs home page: nbdev's docs processors (what `proc_nbs` runs) on index.ipynb, then
`tools/docs.py:nb2md`; doc links stay absolute (they point at the published site), figures go to docs/index_files/.
"""
import sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import docs as D

def readme_text() -> str:
    "README.md's content, from index.ipynb (`readme_nb` in settings.ini)."
    cfg = D._cfg()
    nb = D.process_one(cfg.nbs_path/cfg.readme_nb)
    return D.nb2md(nb, 'README.md', cfg.config_path/'docs'/'index_files', 'docs/index_files', gfm=True, cfg=cfg)

if __name__ == '__main__':
    import warnings; warnings.simplefilter('ignore')
    new, path = readme_text(), D.ROOT/'README.md'
    if '--check' in sys.argv:
        ok = path.exists() and path.read_text(encoding='utf-8') == new
        print('README.md matches nbs/index.ipynb' if ok else 'README.md is stale: run `python tools/readme.py`')
        sys.exit(0 if ok else 1)
    path.write_text(new, encoding='utf-8'); print(f'wrote {path}')
