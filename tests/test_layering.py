"""catdog_gui.core never imports Qt: it runs on servers, in notebooks and in the CLI."""

import subprocess
import sys

CODE = """
import sys
sys.modules['PySide6'] = None      # any import of Qt now fails
sys.modules['pyqtgraph'] = None
import catdog_gui.core.data, catdog_gui.core.augment, catdog_gui.core.training, catdog_gui.core.inference
import catdog_gui.core.evaluation, catdog_gui.core.modelfile, catdog_gui.core.models, catdog_gui.cli
import pkgutil, importlib, catdog_gui.core as core
for m in pkgutil.walk_packages(core.__path__, 'catdog_gui.core.'):
    importlib.import_module(m.name)
from catdog_gui.core.models import list_specs
list_specs()
bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'shiboken6') and sys.modules[m] is not None]
print('QT' if bad else 'CLEAN')
"""


def test_core_imports_without_qt():
    r = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "CLEAN"
