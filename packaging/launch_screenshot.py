"""Launch an installed catdog-gui on an X display and save a screenshot of the screen once its window is up.

    xvfb-run -a -s "-screen 0 1280x860x24" python packaging/launch_screenshot.py ~/.local/bin/catdog-gui out.png

Used to check the release archive after install.sh (packaging/README.md). The app runs with a clean
environment (HOME, PATH, DISPLAY only: no PYTHONPATH, no virtual environment), so what shows is the
frozen app alone. This script needs PySide6 itself, only to grab the screen (QScreen.grabWindow(0)).
Exits 0 when the window appeared and the app was still running; 1 otherwise.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time


def window_up(title: str = "catdog-gui") -> bool:
    """A mapped top-level window whose name contains ``title`` (xwininfo)."""
    out = subprocess.run(["xwininfo", "-root", "-tree"], capture_output=True, text=True).stdout
    return any(title in line and "has no name" not in line for line in out.splitlines())


def cpu_ticks(pid: int) -> int:
    """User + system CPU time used so far by process ``pid`` (Linux /proc), in clock ticks."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def main(exe: str, png: str, timeout_s: float = 120.0) -> int:
    from PySide6.QtGui import QGuiApplication

    env = {k: os.environ[k] for k in ("HOME", "PATH", "DISPLAY", "XAUTHORITY") if k in os.environ}
    app_proc = subprocess.Popen([exe], env=env)
    qapp = QGuiApplication([sys.argv[0]])
    try:
        deadline = time.monotonic() + timeout_s
        while not window_up() and app_proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)  # polling another process's window: nothing to connect a signal to
        if app_proc.poll() is not None or not window_up():
            print(f"no catdog-gui window (exit status {app_proc.poll()})", file=sys.stderr)
            return 1
        # the window paints at once and torch loads behind it: grab once the app has been idle (no CPU
        # time used) for two seconds and the screen no longer changes
        previous, busy = None, None
        while time.monotonic() < deadline:
            time.sleep(1.0)
            shot = qapp.primaryScreen().grabWindow(0).toImage()
            used = cpu_ticks(app_proc.pid)
            if previous is not None and shot == previous and used == busy:
                break
            previous, busy = shot, used
        shot.save(png)
        print(f"saved {png} ({shot.width()}x{shot.height()}); app still running: {app_proc.poll() is None}")
        return 0 if app_proc.poll() is None else 1
    finally:
        app_proc.terminate()
        try:
            app_proc.wait(20)
        except subprocess.TimeoutExpired:
            app_proc.kill()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
