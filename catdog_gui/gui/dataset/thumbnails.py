"""Thumbnails of many photos, decoded in the background and kept in a cache bounded in bytes.

* :func:`decode_thumb`: one photo as a small QImage (JPEG draft decoding: a few ms);
* :class:`ThumbLoader`: decoding on worker :class:`~catdog_gui.gui.common.workers.Task` threads from
  a newest-first stack of requests (a fling leaves old requests behind: they are dropped, not
  decoded); ``ready(key, image)`` arrives on the GUI thread;
* :class:`ThumbCache`: QPixmaps by path, the least recently used dropped first beyond
  :data:`CACHE_BYTES` (``$CATDOG_THUMB_CACHE_MB``, 64 MB by default). :data:`BROKEN` marks a
  photo that cannot be decoded.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict, deque
from typing import Optional

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QPixmap

from ..common.widgets import pil_to_qimage
from ..common.workers import Task

#: the thumbnail cache is trimmed (least recently used first) to this many bytes
CACHE_BYTES = int(os.environ.get("CATDOG_THUMB_CACHE_MB", "64")) * 1024 * 1024
#: requests kept waiting (newest first): more than a few screens' worth are dropped
MAX_PENDING = 400


BROKEN = object()  # the cache's marker for a photo that cannot be decoded


def decode_thumb(path, px: int):
    """A QImage at most ``px`` square, aspect ratio kept (worker thread); None if unreadable."""
    from ...core.data.imageio import load_rgb

    try:
        im = load_rgb(path, draft_size=px)
        im.thumbnail((px, px))
        return pil_to_qimage(im)
    except Exception:
        return None


class ThumbLoader(QObject):
    """Decodes requested paths on ``workers`` background Tasks, newest request first; ``ready``
    (path, QImage or None) arrives on the GUI thread."""

    ready = Signal(object, object)

    def __init__(self, px: int, workers: Optional[int] = None, parent=None):
        super().__init__(parent)
        self.px = px
        self.workers = workers or max(1, min(4, (os.cpu_count() or 2) - 1))
        self._stack: deque = deque()
        self._pending: set = set()
        self._cond = threading.Condition()
        self._tasks: list[Task] = []
        self._closed = False
        self.decoded = 0  # how many photos were decoded

    def request(self, key) -> None:
        with self._cond:
            if key in self._pending:
                return
            self._pending.add(key)
            self._stack.append(key)
            while len(self._stack) > MAX_PENDING:
                self._pending.discard(self._stack.popleft())
            self._cond.notify()
        if not self._tasks and not self._closed:
            self._start()

    def clear(self) -> None:
        """Forget every waiting request (a new filter or dataset)."""
        with self._cond:
            self._stack.clear()
            self._pending.clear()

    def pending(self) -> int:
        with self._cond:
            return len(self._stack)

    def _start(self) -> None:
        for i in range(self.workers):
            t = Task(self._work, self, name=f"thumbnails-{i}")
            t.partial.connect(self._deliver)
            self._tasks.append(t)
            t.start()

    def _work(self, state) -> None:
        while True:
            with self._cond:
                while not self._stack and not state.cancelled():
                    self._cond.wait(0.25)
                if state.cancelled():
                    return
                key = self._stack.pop()
            state.emit((key, decode_thumb(key, self.px)))

    def _deliver(self, item) -> None:
        # still pending until here: a cell painted again before the image arrived asks no second time
        with self._cond:
            self._pending.discard(item[0])
        self.decoded += 1
        self.ready.emit(*item)

    def shutdown(self) -> None:
        self._closed = True
        for t in self._tasks:
            t.discard()
        with self._cond:
            self._stack.clear()
            self._cond.notify_all()
        Task.shutdown_all(self)
        self._tasks = []


class ThumbCache:
    """QPixmaps by path, least recently used dropped first beyond ``limit`` bytes."""

    def __init__(self, limit: int = CACHE_BYTES):
        self.limit = limit
        self.nbytes = 0
        self._items: OrderedDict = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key):
        v = self._items.get(key)
        if v is not None:
            self._items.move_to_end(key)
        return v

    def put(self, key, value) -> None:
        old = self._items.pop(key, None)
        if old is not None:
            self.nbytes -= self._size(old)
        self._items[key] = value
        self.nbytes += self._size(value)
        while self.nbytes > self.limit and len(self._items) > 1:
            _k, v = self._items.popitem(last=False)
            self.nbytes -= self._size(v)

    def clear(self) -> None:
        self._items.clear()
        self.nbytes = 0

    @staticmethod
    def _size(v) -> int:
        if isinstance(v, QPixmap):
            return v.width() * v.height() * max(1, v.depth() // 8) + 64
        return 64
