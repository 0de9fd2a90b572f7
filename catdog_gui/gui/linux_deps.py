"""Before Qt starts on Linux: are the system libraries its xcb platform plugin needs installed?

When one is missing, Qt aborts the process with "could not load the Qt platform plugin "xcb"",
which names nothing to install. :func:`startup_problem` runs ``ldd`` on PySide6's
``Qt/plugins/platforms/libqxcb.so`` first (only when xcb is the plugin Qt will use), and returns
a message naming the missing libraries and the apt-get (Debian/Ubuntu) and dnf (Fedora) commands
that install them; ``catdog-gui`` prints it and exits instead. No Qt is imported here.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Callable, Mapping, Optional

#: library file name -> (Debian/Ubuntu package, Fedora package)
PACKAGES: dict[str, tuple[str, str]] = {
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil"),
    "libxcb-util.so.1": ("libxcb-util1", "xcb-util"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb"),
    "libxcb-shm.so.0": ("libxcb-shm0", "libxcb"),
    "libxcb-sync.so.1": ("libxcb-sync1", "libxcb"),
    "libxcb-xfixes.so.0": ("libxcb-xfixes0", "libxcb"),
    "libxcb-xinerama.so.0": ("libxcb-xinerama0", "libxcb"),
    "libxcb-xinput.so.0": ("libxcb-xinput0", "libxcb"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb"),
    "libxcb-render.so.0": ("libxcb-render0", "libxcb"),
    "libxcb-glx.so.0": ("libxcb-glx0", "libxcb"),
    "libxcb.so.1": ("libxcb1", "libxcb"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb"),
    "libX11.so.6": ("libx11-6", "libX11"),
    "libSM.so.6": ("libsm6", "libSM"),
    "libICE.so.6": ("libice6", "libICE"),
    "libEGL.so.1": ("libegl1", "libglvnd-egl"),
    "libGL.so.1": ("libgl1", "libglvnd-glx"),
    "libGLX.so.0": ("libglx0", "libglvnd-glx"),
    "libOpenGL.so.0": ("libopengl0", "libglvnd-opengl"),
    "libfontconfig.so.1": ("libfontconfig1", "fontconfig"),
    "libfreetype.so.6": ("libfreetype6", "freetype"),
    "libdbus-1.so.3": ("libdbus-1-3", "dbus-libs"),
    "libglib-2.0.so.0": ("libglib2.0-0", "glib2"),
    "libgthread-2.0.so.0": ("libglib2.0-0", "glib2"),
    "libpulse.so.0": ("libpulse0", "pulseaudio-libs"),
}

_NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found\s*$")


def missing_libraries(ldd_output: str) -> list[str]:
    """The ``not found`` libraries of ``ldd`` output, in order, without repeats."""
    out: list[str] = []
    for line in ldd_output.splitlines():
        m = _NOT_FOUND.match(line)
        if m and m.group(1) not in out:
            out.append(m.group(1))
    return out


def xcb_plugin() -> Optional[Path]:
    """PySide6's xcb platform plugin, found without importing PySide6 (None if absent)."""
    try:
        spec = importlib.util.find_spec("PySide6")
    except (ImportError, ValueError):
        return None
    for base in (spec.submodule_search_locations or []) if spec else []:
        p = Path(base) / "Qt" / "plugins" / "platforms" / "libqxcb.so"
        if p.is_file():
            return p
    return None


def run_ldd(path: Path) -> Optional[str]:
    """``ldd path``'s output, or None when ldd is not there or fails."""
    try:
        r = subprocess.run(["ldd", str(path)], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout if r.stdout else None


def uses_xcb(env: Mapping[str, str], platform: str = sys.platform) -> bool:
    """Whether Qt will load its xcb plugin: Linux, and QT_QPA_PLATFORM says xcb (first) or is
    unset outside a Wayland session (Qt prefers its wayland plugin there)."""
    if not platform.startswith("linux"):
        return False
    qpa = env.get("QT_QPA_PLATFORM", "").strip()
    if qpa:
        return qpa.split(";")[0].split(":")[0].strip().lower() == "xcb"
    wayland = env.get("WAYLAND_DISPLAY") and env.get("XDG_SESSION_TYPE", "").lower() == "wayland"
    return not wayland


def message(missing: list[str], needs: str = "Qt's xcb platform plugin needs") -> str:
    """What to print for these missing libraries: what, and the commands that install them."""
    deb, fed, unknown = [], [], []
    for lib in missing:
        pk = PACKAGES.get(lib)
        if pk is None:
            unknown.append(lib)
            continue
        if pk[0] not in deb:
            deb.append(pk[0])
        if pk[1] not in fed:
            fed.append(pk[1])
    many = len(missing) > 1
    lines = [f"catdog-gui cannot open its window: {needs} {'system libraries that are' if many else 'a system library that is'} "
             f"not installed: {', '.join(missing)}.", ""]
    if deb:
        lines += [f"Install {'them' if len(deb) > 1 else 'it'} with",
                  f"  Debian/Ubuntu:  sudo apt-get install {' '.join(deb)}",
                  f"  Fedora:         sudo dnf install {' '.join(fed)}"]
    if unknown:
        lines += ["Find the package that has " + ", ".join(unknown) + " with",
                  "  Debian/Ubuntu:  apt-file search " + unknown[0],
                  "  Fedora:         dnf provides '*/" + unknown[0] + "'"]
    lines += ["", "Then start catdog-gui again. (The catdog command works without them.)"]
    return "\n".join(lines)


def startup_problem(env: Optional[Mapping[str, str]] = None, platform: str = sys.platform,
                    plugin: Optional[Callable[[], Optional[Path]]] = None,
                    ldd: Optional[Callable[[Path], Optional[str]]] = None) -> Optional[str]:
    """The message to print instead of starting Qt, or None when nothing is known to be wrong
    (not Linux, not xcb, no plugin or no ldd: Qt then starts and speaks for itself): missing
    libraries, else no display at all."""
    env = os.environ if env is None else env
    if not uses_xcb(env, platform):
        return None
    path = (plugin or xcb_plugin)()
    if path is None:
        return None
    out = (ldd or run_ldd)(path)
    missing = missing_libraries(out or "")
    if missing:
        return message(missing)
    if not env.get("DISPLAY"):
        return ("catdog-gui cannot open its window: there is no display (DISPLAY is not set). Start it from a "
                "desktop session (or over ssh -X); the catdog command works without one.")
    return None


_NO_SO = re.compile(r"(lib[\w.+-]+\.so(?:\.\d+)*): cannot open shared object file")


def import_problem(error: BaseException) -> Optional[str]:
    """The message for an ImportError of PySide6 itself that names a missing system library
    (``libEGL.so.1: cannot open shared object file``), else None."""
    missing = _NO_SO.findall(str(error))
    return message(list(dict.fromkeys(missing)), needs="Qt needs") if missing else None
