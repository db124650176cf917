"The generated module must be exactly what the notebooks export, and notebooks must be clean."
import sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]/'tools'))
from check_sync import changed_files

def test_notebooks_and_module_in_sync():
    assert changed_files() == [], 'run `nbdev_export && nbdev_clean` and commit'
