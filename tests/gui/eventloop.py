"""Waiting in hand-run GUI scripts (screenshots, benchmarks): run the real event loop, never sleep."""

from __future__ import annotations

from PySide6.QtCore import QEventLoop, QTimer


def wait_until(cond, timeout: float = 600.0, what: str = "condition") -> None:
    """Run the event loop until ``cond()`` holds; TimeoutError after ``timeout`` seconds."""
    if cond():
        return
    loop = QEventLoop()
    poll = QTimer(interval=20)
    poll.timeout.connect(lambda: cond() and loop.quit())
    expired = []
    deadline = QTimer(singleShot=True, interval=int(timeout * 1000))
    deadline.timeout.connect(lambda: (expired.append(1), loop.quit()))
    poll.start()
    deadline.start()
    loop.exec()
    poll.stop()
    deadline.stop()
    if expired and not cond():
        raise TimeoutError(f"timed out waiting for {what}")
