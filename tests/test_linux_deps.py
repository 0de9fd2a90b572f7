"""catdog-gui on a Linux machine without Qt's system libraries: the ldd output is read, the missing
libraries named with the apt-get and dnf commands, and the window is not started. Fake ldd output
and environments only: Qt is never really broken here."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from catdog_gui.gui import linux_deps

LDD_DEBIAN12_NO_DESKTOP = """\
\tlinux-vdso.so.1 (0x00007ffd6a5f4000)
\tlibQt6XcbQpa.so.6 => /venv/lib/python3.11/site-packages/PySide6/Qt/plugins/platforms/../../lib/libQt6XcbQpa.so.6 (0x00007f2c1c400000)
\tlibQt6Gui.so.6 => /venv/lib/python3.11/site-packages/PySide6/Qt/lib/libQt6Gui.so.6 (0x00007f2c1bc00000)
\tlibxcb-cursor.so.0 => not found
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => not found
\tlibxcb-icccm.so.4 => not found
\tlibxkbcommon-x11.so.0 => /lib/x86_64-linux-gnu/libxkbcommon-x11.so.0 (0x00007f2c1c3f0000)
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f2c1ba1f000)
\t/lib64/ld-linux-x86-64.so.2 (0x00007f2c1c6a0000)
"""


def test_missing_libraries_from_ldd_output():
    assert linux_deps.missing_libraries(LDD_DEBIAN12_NO_DESKTOP) == [
        "libxcb-cursor.so.0", "libxcb-icccm.so.4", "libxcb-keysyms.so.1"]
    assert linux_deps.missing_libraries("\tlibc.so.6 => /lib/libc.so.6 (0x1)\n") == []
    assert linux_deps.missing_libraries("") == []


def test_message_names_the_libraries_and_both_install_commands():
    msg = linux_deps.message(["libxcb-cursor.so.0", "libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libxcb-shape.so.0",
                              "libxcb-randr.so.0"])
    assert "libxcb-cursor.so.0, libxcb-icccm.so.4" in msg
    assert "sudo apt-get install libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-randr0" in msg
    assert "sudo dnf install xcb-util-cursor xcb-util-wm xcb-util-keysyms libxcb\n" in msg  # libxcb once
    assert "could not load the Qt platform plugin" not in msg
    one = linux_deps.message(["libEGL.so.1"])
    assert "a system library that is not installed: libEGL.so.1." in one and "Install it with" in one
    odd = linux_deps.message(["libweird.so.3"])
    assert "apt-file search libweird.so.3" in odd and "dnf provides '*/libweird.so.3'" in odd


@pytest.mark.parametrize("env, platform, expected", [
    ({"DISPLAY": ":0"}, "linux", True),
    ({}, "linux", True),
    ({"QT_QPA_PLATFORM": "xcb"}, "linux", True),
    ({"QT_QPA_PLATFORM": "xcb;wayland"}, "linux", True),
    ({"QT_QPA_PLATFORM": "offscreen"}, "linux", False),
    ({"QT_QPA_PLATFORM": "wayland;xcb"}, "linux", False),
    ({"WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland", "DISPLAY": ":0"}, "linux", False),
    ({"WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "x11", "DISPLAY": ":0"}, "linux", True),
    ({"DISPLAY": ":0"}, "darwin", False),
    ({}, "win32", False),
])
def test_when_xcb_is_used(env, platform, expected):
    assert linux_deps.uses_xcb(env, platform) is expected


def test_startup_problem_decision():
    plugin = lambda: Path("/fake/libqxcb.so")  # noqa: E731
    calls = []

    def ldd(path):
        calls.append(path)
        return LDD_DEBIAN12_NO_DESKTOP

    msg = linux_deps.startup_problem({"DISPLAY": ":0"}, "linux", plugin, ldd)
    assert calls == [Path("/fake/libqxcb.so")] and "sudo apt-get install libxcb-cursor0" in msg
    # not xcb, no plugin, no ldd, nothing missing: no message (Qt starts)
    calls.clear()
    assert linux_deps.startup_problem({"QT_QPA_PLATFORM": "offscreen"}, "linux", plugin, ldd) is None
    assert calls == []  # ldd not even run
    assert linux_deps.startup_problem({"DISPLAY": ":0"}, "linux", lambda: None, ldd) is None
    assert linux_deps.startup_problem({"DISPLAY": ":0"}, "linux", plugin, lambda p: None) is None
    fine = "\tlibc.so.6 => /lib/libc.so.6 (0x1)\n"
    assert linux_deps.startup_problem({"DISPLAY": ":0"}, "linux", plugin, lambda p: fine) is None
    # everything there but no display at all
    assert "no display" in linux_deps.startup_problem({}, "linux", plugin, lambda p: fine)


def test_real_plugin_and_ldd_on_this_machine():
    """The plugin is found where PySide6 keeps it, and this machine's ldd output parses (whatever it says)."""
    if not sys.platform.startswith("linux"):
        pytest.skip("Linux only")
    path = linux_deps.xcb_plugin()
    assert path is not None and path.name == "libqxcb.so"
    out = linux_deps.run_ldd(path)
    if out is None:
        pytest.skip("no ldd here")
    assert "libQt6" in out
    missing = linux_deps.missing_libraries(out)
    not_found = [line.split("=>")[0].strip() for line in out.splitlines() if "not found" in line]
    assert missing == list(dict.fromkeys(not_found))  # exactly the libraries ldd could not find, in order


def test_import_problem():
    e = ImportError("libEGL.so.1: cannot open shared object file: No such file or directory")
    assert "sudo apt-get install libegl1" in linux_deps.import_problem(e)
    assert linux_deps.import_problem(ImportError("No module named 'PySide6'")) is None


def test_catdog_gui_prints_the_message_and_does_not_start_qt(monkeypatch, capsys):
    from catdog_gui.gui import app

    monkeypatch.setattr(linux_deps, "startup_problem", lambda: "catdog-gui cannot open its window: test")
    monkeypatch.setitem(sys.modules, "PySide6.QtWidgets", None)  # any Qt import would now fail loudly
    assert app.main(["catdog-gui"]) == 1
    assert capsys.readouterr().err.strip() == "catdog-gui cannot open its window: test"


def test_catdog_gui_names_a_library_qt_itself_lacks(monkeypatch, capsys):
    import builtins

    from catdog_gui.gui import app

    monkeypatch.setattr(linux_deps, "startup_problem", lambda: None)
    real_import = builtins.__import__

    def fake_import(name, *args, **kw):
        if name.startswith("PySide6.QtGui"):
            raise ImportError("libxkbcommon.so.0: cannot open shared object file: No such file or directory")
        return real_import(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    assert app.main(["catdog-gui"]) == 1
    err = capsys.readouterr().err
    assert "libxkbcommon.so.0" in err and "sudo apt-get install libxkbcommon0" in err
