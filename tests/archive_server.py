"""A local HTTP server for the sample-photo tests: 127.0.0.1, port 0, in a thread, stopped by the
test (and by itself after ``lifetime`` seconds whatever happens). It serves byte strings by path,
honours Range requests, and can misbehave on purpose: drop the connection after some bytes (only
the first ``drop_times`` requests), answer an error status, or refuse ranges."""

from __future__ import annotations

import http.server
import io
import threading
import time
import zipfile
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from PIL import Image


@dataclass
class Route:
    body: bytes
    status: int = 200
    drop_after: Optional[int] = None  # close the connection after this many body bytes...
    drop_times: int = 1  # ...on this many requests
    ranges: bool = True
    requests: list = field(default_factory=list)  # the Range header of each request ("" if none)
    #: send the first ``gate_after`` bytes of the first request, then wait for ``gate`` (at most 20 s)
    gate: Optional[threading.Event] = None
    gate_after: int = 0
    #: bytes per second (None: as fast as it goes), read for every 64 kB: may change while serving
    rate: Optional[float] = None


class ArchiveServer:
    def __init__(self, lifetime: float = 120.0):
        self.routes: dict[str, Route] = {}
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 10

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):  # noqa: N802
                route = server.routes.get(self.path)
                if route is None:
                    self.send_error(404, "Not Found")
                    return
                rng = self.headers.get("Range", "")
                route.requests.append(rng)
                if route.status != 200:
                    self.send_error(route.status)
                    return
                body, start = route.body, 0
                if rng and route.ranges and rng.startswith("bytes="):
                    start = int(rng[6:].split("-")[0])
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(len(body) - start))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                data = body[start:]
                if route.drop_after is not None and route.drop_times > 0:
                    route.drop_times -= 1
                    self.wfile.write(data[: route.drop_after])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if route.gate is not None and not start:
                    self.wfile.write(data[: route.gate_after])
                    self.wfile.flush()
                    route.gate.wait(20)
                    data = data[route.gate_after:]
                    try:
                        self.wfile.write(data)
                    except (BrokenPipeError, ConnectionResetError):  # the client went away (Cancel)
                        self.close_connection = True
                    return
                if route.rate is None:
                    self.wfile.write(data)
                    return
                try:
                    for i in range(0, len(data), 1 << 16):
                        self.wfile.write(data[i:i + (1 << 16)])
                        if route.rate:
                            time.sleep((1 << 16) / route.rate)  # a slow line, for screenshots
                except (BrokenPipeError, ConnectionResetError):  # the client stopped (Cancel)
                    self.close_connection = True

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.timer = threading.Timer(lifetime, self.httpd.shutdown)
        self.timer.daemon = True

    def __enter__(self) -> "ArchiveServer":
        self.thread.start()
        self.timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self.timer.cancel()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def add(self, path: str, body: bytes, **kw) -> str:
        self.routes[path] = Route(body, **kw)
        return self.url(path)


def jpeg_bytes(color, seed: int, size=(40, 36)) -> bytes:
    rng = np.random.default_rng(seed)
    arr = np.clip(np.array(color)[None, None, :] + rng.normal(0, 25, (size[1], size[0], 3)), 0, 255)
    buf = io.BytesIO()
    Image.fromarray(arr.astype(np.uint8)).save(buf, "JPEG", quality=80)
    return buf.getvalue()


def sample_zip(n_train: int = 6, n_val: int = 3, top: str = "cats_and_dogs_filtered", extra=(),
               compression=zipfile.ZIP_DEFLATED) -> bytes:
    """A tiny archive laid out like cats_and_dogs_filtered.zip: top/train|validation/cats|dogs/*.jpg,
    reddish cats and bluish dogs (learnable); ``extra``: (name, bytes) entries added as they are."""
    buf = io.BytesIO()
    colors = {"cats": (170, 60, 60), "dogs": (60, 60, 170)}
    with zipfile.ZipFile(buf, "w", compression) as zf:
        zf.writestr(f"{top}/", b"")
        zf.writestr(f"{top}/vectorize.py", b"# not a photo\n")
        for split, n in (("train", n_train), ("validation", n_val)):
            for ci, (cls, color) in enumerate(colors.items()):
                for i in range(n):
                    zf.writestr(f"{top}/{split}/{cls}/{cls[:-1]}.{i}.jpg",
                                jpeg_bytes(color, seed=(0 if split == "train" else 1) * 10_000 + ci * 1000 + i))
        for name, data in extra:
            zf.writestr(name, data)
    return buf.getvalue()
