"""Qt fixtures for the GUI tests: offscreen, isolated settings and data folders, a ready window."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before Qt is imported

import pytest  # noqa: E402
from PIL import Image  # noqa: E402
from PySide6.QtCore import QStandardPaths  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Never touch the user's settings or data folders: QStandardPaths test mode, settings in tmp."""
    QStandardPaths.setTestModeEnabled(True)
    monkeypatch.setenv("CATDOG_SETTINGS", str(tmp_path / "default-settings.ini"))
    yield


@pytest.fixture
def settings_path(tmp_path):
    return tmp_path / "settings.ini"


@pytest.fixture
def make_window(qtbot, tmp_path, settings_path):
    """Build MainWindows on one settings file and models folder, with the training engine loaded."""
    from catdog_gui.gui.main_window import MainWindow
    from catdog_gui.gui.settings import Settings

    def make(ready: bool = True, path=None):
        win = MainWindow(Settings(path or settings_path), models_folder=str(tmp_path / "models"))
        qtbot.addWidget(win)
        if ready:
            win.ensure_backend()
        return win

    return make


@pytest.fixture
def current():
    """A CurrentModel of its own (the window's is ``window.current``), stopped after the test."""
    from catdog_gui.gui.models.current_model import CurrentModel

    c = CurrentModel()
    yield c
    c.shutdown()


@pytest.fixture
def child_preload(tmp_path, monkeypatch):
    """``plant(code)``: the training processes this test starts run ``code`` first (a crash drill, or a
    patched trainer: the child is another interpreter, so a monkeypatch here would not reach it)."""
    import textwrap

    from catdog_gui.core.training.child import ENV_PRELOAD
    from catdog_gui.gui.common.training_process import ChildPool

    def plant(code: str):
        f = tmp_path / "child_preload.py"
        f.write_text(textwrap.dedent(code))
        monkeypatch.setenv(ENV_PRELOAD, str(f))
        monkeypatch.setattr(ChildPool, "enabled", False)  # a child started earlier would not run it
        return f

    return plant


@pytest.fixture
def window(make_window):
    return make_window()


def add_bad_files(folder):
    """A corrupt JPEG and a text file named .jpg in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 40)
    (folder / "notes.jpg").write_text("this is not an image")


def scan(qtbot, tab, folder, val=None, timeout=20000):
    with qtbot.waitSignal(tab.scan_finished, timeout=timeout) as blocker:
        tab.set_folders(str(folder), str(val) if val else None)
    return blocker.args[0]


def small_image(path, color=(200, 30, 30), size=(48, 32)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return path


@pytest.fixture
def gui():
    """Helpers for the GUI tests (a namespace: conftest modules are not importable by name)."""
    from types import SimpleNamespace

    return SimpleNamespace(add_bad_files=add_bad_files, scan=scan, small_image=small_image)
