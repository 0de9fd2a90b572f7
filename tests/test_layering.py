"""The floor plan, checked from the code's own imports.

- catdog_gui.core never imports Qt (it runs on servers, in notebooks, in the CLI and in a training child process);
- core never imports gui, the CLI or the API;
- a tab's folder (gui/dataset, gui/training, gui/prediction, gui/network, gui/runs) imports gui/models, gui/common
  and core, never another tab;
- gui/models and gui/common import no tab;
- no import circle between modules, counting imports made inside functions too.

The import graph is read with ``ast`` from the source, so a rule broken only on a rarely taken path still shows.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import catdog_gui

PKG_DIR = Path(catdog_gui.__file__).parent
TABS = ("dataset", "training", "prediction", "network", "runs")


def module_name(path: Path, root: Path = PKG_DIR) -> str:
    parts = ["catdog_gui", *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, name: str, modules: set[str]) -> set[str]:
    """Every catdog_gui module ``path`` imports (relative imports resolved, ``from pkg import module`` included)."""
    is_pkg = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            subs = {f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in modules}
            found.update(subs if len(subs) == len(node.names) else subs | {target})
    return {m for m in found if m.split(".")[0] in ("catdog_gui", "PySide6", "pyqtgraph", "shiboken6")}


def import_graph(root: Path = PKG_DIR) -> dict[str, set[str]]:
    files = {module_name(p, root): p for p in root.rglob("*.py")}
    modules = set(files)
    return {name: imports_of(path, name, modules) for name, path in files.items()}


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for mod, deps in sorted(graph.items()):
        parts = mod.split(".")
        for dep in sorted(deps):
            dparts = dep.split(".")
            if parts[1:2] == ["core"]:
                if dparts[0] != "catdog_gui":
                    bad.append(f"{mod} imports Qt ({dep})")
                elif dep != "catdog_gui" and dparts[1:2] != ["core"]:  # the package's __version__ is fine
                    bad.append(f"{mod} imports {dep}: core imports only core")
            if parts[1:2] == ["gui"] and len(parts) > 3 and dparts[:2] == ["catdog_gui", "gui"] and len(dparts) > 2:
                here, there = parts[2], dparts[2]
                if here in TABS and there in TABS and here != there:
                    bad.append(f"{mod} imports {dep}: a tab never imports another tab")
                if here in ("models", "common") and there in TABS:
                    bad.append(f"{mod} imports {dep}: gui/{here} imports no tab")
    return bad


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each a circle of imports.

    A package's ``__init__`` importing its own modules is not a circle: ``import pkg.mod`` runs ``pkg/__init__``
    first, whatever ``mod`` says, so that edge is left out."""
    edges = {m: {d for d in deps if d in graph and not (m.endswith(d) is False and d == m.rsplit(".", 1)[0])}
             for m, deps in graph.items()}
    # an edge to a parent package is how Python imports a submodule; it is not a dependency of the module's code
    edges = {m: {d for d in deps if not m.startswith(d + ".")} for m, deps in edges.items()}
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_the_package_keeps_its_floor_plan():
    graph = import_graph()
    assert "catdog_gui.gui.training.tab" in graph and "catdog_gui.core.data.scan" in graph
    assert layer_violations(graph) == []
    assert import_cycles(graph) == []


def _plant(tmp_path: Path, rel: str, line: str) -> dict[str, set[str]]:
    """A copy of the package with one import line added to one module."""
    import shutil

    copy = tmp_path / "catdog_gui"
    shutil.copytree(PKG_DIR, copy, ignore=shutil.ignore_patterns("__pycache__", "resources"))
    target = copy / rel
    target.write_text(target.read_text(encoding="utf-8") + f"\n\ndef _planted():\n    {line}\n", encoding="utf-8")
    return import_graph(copy)


@pytest.mark.parametrize("rel, line, what", [
    ("gui/training/tab.py", "from ..runs.tab import RunsView", "a tab never imports another tab"),
    ("gui/models/current_model.py", "from ..prediction import result_card", "gui/models imports no tab"),
    ("core/data/scan.py", "from ...gui.common import widgets", "core imports only core"),
    ("core/inference/predictor.py", "import PySide6.QtCore", "imports Qt"),
])
def test_a_planted_layer_violation_is_caught(tmp_path, rel, line, what):
    bad = set(layer_violations(_plant(tmp_path, rel, line))) - set(layer_violations(import_graph()))
    assert len(bad) == 1 and what in bad.pop(), bad


def test_a_planted_import_circle_is_caught(tmp_path):
    assert import_cycles(import_graph()) == []
    cycles = import_cycles(_plant(tmp_path, "core/errors.py", "from .storage import files"))
    assert any("catdog_gui.core.errors" in c and "catdog_gui.core.storage.files" in c for c in cycles), cycles


CODE = """
import sys
sys.modules['PySide6'] = None      # any import of Qt now fails
sys.modules['pyqtgraph'] = None
import catdog_gui.cli
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
