"""Live camera prediction: frames/s classified and the GUI's added lateness, from a video file.

Run by hand (offscreen Qt), on the machine's cores as they are (pin with ``taskset -c 0,1`` for 2 cores):
    python tests/benchmarks/bench_camera.py [DATA] [--models lenet5,default] [--seconds 10]

* The source: an MJPEG video file (concatenated JPEGs, 25 frames/s, 640x480) made from the dataset's
  photos, played by QMediaPlayer into the Camera page's QVideoSink, exactly as a camera would be.
* For each model (LeNet-5, and the default pretrained model with a frozen backbone), trained here for
  ``--epochs`` on ``--per-class`` photos per class: the Camera page (``CameraLivePage``) classifies the
  feed for ``--seconds``; printed: frames arrived, frames classified per second, frames dropped
  (arrived while a prediction ran), and a 10 ms PreciseTimer's lateness (median, p99).
* Reference, in the same run: the same video with no model open (frames shown, nothing classified).
  "Added lateness" = model p99 - reference p99.

``--collect`` measures the Dataset tab's Camera panel instead: "Hold to record" at 25 photos/s from the
same video for ``--seconds``, with the photos encoded and written by the panel's PhotoWriter thread, and,
as references in the same run, the panel only previewing (not recording) and recording with each photo
encoded and written on the GUI thread (how the panel worked before the writer). Printed: photos
written per second and the timer's lateness.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
DEFAULT_DATA = os.environ.get("CATDOG_TEST_DATA", str(ROOT.parent / "shared" / "datasets" / "catdog-1800"))


def _stats(v: list[float]) -> dict:
    q = sorted(v) or [0.0]
    return {"median": statistics.median(q), "p99": q[int(0.99 * (len(q) - 1))]}


def subset(data: Path, per_class: int, out: Path) -> Path:
    from catdog_gui.core.data.layouts import list_images

    for cls in sorted(d.name for d in data.iterdir() if d.is_dir() and not d.name.startswith(".")):
        (out / cls).mkdir(parents=True, exist_ok=True)
        files, _ = list_images(data / cls)
        for f in files[:per_class]:
            os.symlink(f, out / cls / f.name)
    return out


def make_video(data: Path, path: Path, n: int = 100, size=(640, 480)) -> Path:
    """A raw MJPEG file (FFmpeg plays it at 25 frames/s) of ``n`` dataset photos."""
    from PIL import Image

    from catdog_gui.core.data.layouts import list_images

    files, _ = list_images(data)
    with open(path, "wb") as f:
        for src in (files * (n // max(len(files), 1) + 1))[:n]:
            with Image.open(src) as im:
                buf = io.BytesIO()
                im.convert("RGB").resize(size).save(buf, "JPEG", quality=85)
                f.write(buf.getvalue())
    return path


def train(name: str, data: Path, out: Path, epochs: int) -> str:
    from catdog_gui.core.config import make_config
    from catdog_gui.core.training.trainer import Trainer

    pretrained = name != "lenet5"
    cfg = make_config(None if name == "default" else name, pretrained=pretrained, epochs=epochs,
                      patience=0, device="cpu", seed=0)
    fin = Trainer(cfg).fit(str(data), out_path=out)
    if not fin.ok:
        raise SystemExit(f"training {name} failed: {fin.reason}")
    return str(out)


def measure(app, video: Path, model: str | None, seconds: float) -> dict:
    from catdog_gui.gui.prediction.camera_live import CameraLivePage
    from catdog_gui.gui.models.current_model import CurrentModel

    current = CurrentModel(device="cpu")
    if model:
        current.open_now(model)
    page = CameraLivePage(current)
    page.resize(800, 600)
    page.show()
    page.source.use_file(str(video))
    start = time.monotonic()
    while page.frames == 0 and time.monotonic() - start < 20:  # the player has started
        app.processEvents()
        time.sleep(0.005)
    f0, p0, d0 = page.frames, page.predicted, page.dropped
    stats, wall = _lateness(app, seconds)
    res = {"frames": page.frames - f0, "classified": page.predicted - p0, "dropped": page.dropped - d0,
           "wall": wall, **stats}
    page.shutdown()
    page.deleteLater()
    current.shutdown()
    app.processEvents()
    return res


def _lateness(app, seconds: float) -> tuple[dict, float]:
    """Run the event loop for ``seconds`` with a 10 ms PreciseTimer; its lateness and the wall time."""
    from PySide6.QtCore import QElapsedTimer, Qt, QTimer

    late: list[float] = []
    clock = QElapsedTimer()
    clock.start()
    last = [clock.nsecsElapsed()]

    def tick():
        now = clock.nsecsElapsed()
        late.append(max(0.0, (now - last[0]) / 1e6 - 10.0))
        last[0] = now

    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.timeout.connect(tick)
    timer.start(10)
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        app.processEvents()
        time.sleep(0.001)
    wall = time.monotonic() - t0
    timer.stop()
    return _stats(late), wall


def measure_collect(app, video: Path, out: Path, seconds: float, mode: str) -> dict:
    """mode: "preview" (not recording), "gui thread" (each photo encoded on the GUI thread) or "writer"."""
    from catdog_gui.gui.dataset import camera_collect
    from catdog_gui.gui.dataset.camera_collect import CameraCollectPanel, save_photo
    from catdog_gui.gui.common.camera_source import qimage_to_pil

    out.mkdir(parents=True, exist_ok=True)
    panel = CameraCollectPanel(lambda: str(out))
    if mode == "gui thread":
        class InlineWriter(camera_collect.PhotoWriter):
            def put(self, image, root, cls, stem):
                self.saved.emit(save_photo(qimage_to_pil(image), root, cls, stem), cls)

            def finish(self):
                self.drained.emit()

        panel.writer.saved.disconnect()
        panel.writer.drained.disconnect()
        panel.writer = InlineWriter(panel)
        panel.writer.saved.connect(panel._on_saved)
        panel.writer.drained.connect(panel._report)
    panel.resize(800, 600)
    panel.show()
    panel.rate_spin.setValue(25)
    panel.class_combo.setEditText("cat")
    panel.source.use_file(str(video))
    start = time.monotonic()
    while panel._latest is None and time.monotonic() - start < 20:
        app.processEvents()
        time.sleep(0.005)
    if mode != "preview":
        panel.start_recording()
    stats, wall = _lateness(app, seconds)
    panel.stop_recording()
    while panel.writer.busy():
        app.processEvents()
        time.sleep(0.005)
    written = len(list((out / "cat").glob("*.jpg"))) if (out / "cat").is_dir() else 0
    panel.shutdown()
    panel.deleteLater()
    app.processEvents()
    return {"written": written, "wall": wall, **stats}


def main_collect(app, video: Path, tmp: Path, seconds: float) -> None:
    rows = [(mode, measure_collect(app, video, tmp / mode.replace(" ", "-"), seconds, mode))
            for mode in ("preview", "gui thread", "writer")]
    ref = rows[0][1]["p99"]
    print(f"\nCamera panel, Hold to record at 25 photos/s, MJPEG 640x480 at 25 fps, {seconds:g} s")
    print(f"{'photos encoded on':<22}{'written':>9}{'photos/s':>10}{'late med ms':>13}{'late p99 ms':>13}{'added p99':>11}")
    for name, r in rows:
        label = {"preview": "(not recording)", "gui thread": "the GUI thread", "writer": "the writer thread"}[name]
        print(f"{label:<22}{r['written']:>9}{r['written'] / r['wall']:>10.1f}"
              f"{r['median']:>13.2f}{r['p99']:>13.2f}{r['p99'] - ref:>11.2f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data", nargs="?", default=DEFAULT_DATA)
    ap.add_argument("--models", default="lenet5,default", help="lenet5 and/or default (the default pretrained model)")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--per-class", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--frames", type=int, default=100, help="frames in the video file (it loops)")
    ap.add_argument("--collect", action="store_true", help="the Camera panel's recording instead (see above)")
    a = ap.parse_args()

    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    import torch

    print(f"torch threads {torch.get_num_threads()}, cpus {len(os.sched_getaffinity(0))}")
    tmp = Path(tempfile.mkdtemp(prefix="bench-camera-"))
    data = subset(Path(a.data), a.per_class, tmp / "data")
    video = make_video(data, tmp / "clip.mjpeg", a.frames)
    if a.collect:
        main_collect(app, video, tmp / "collected", a.seconds)
        return
    rows = [("reference (no model)", measure(app, video, None, a.seconds))]
    for name in [m for m in a.models.split(",") if m]:
        model = train(name, data, tmp / f"{name}.pt", a.epochs)
        rows.append((name, measure(app, video, model, a.seconds)))
    ref = rows[0][1]["p99"]
    print(f"\n{'source: MJPEG 640x480, 25 fps, ' + str(a.seconds) + ' s':<40}")
    print(f"{'model':<22}{'frames':>8}{'classified/s':>14}{'dropped':>9}{'late med ms':>13}{'late p99 ms':>13}{'added p99':>11}")
    for name, r in rows:
        print(f"{name:<22}{r['frames']:>8}{r['classified'] / r['wall']:>14.1f}{r['dropped']:>9}"
              f"{r['median']:>13.2f}{r['p99']:>13.2f}{r['p99'] - ref:>11.2f}")


if __name__ == "__main__":
    main()
