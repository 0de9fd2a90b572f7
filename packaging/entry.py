"""Entry point of the frozen app (PyInstaller): the normal app, plus ``--smoke-test``.

``catdog-gui --smoke-test [PHOTO]`` (offscreen unless QT_QPA_PLATFORM says otherwise) checks that the
frozen build works, then exits 0, or 1 with the reason:

1. opens the main window and waits for its background warm-up (torch, the model registry);
2. builds EfficientNet-Lite0 with its bundled ImageNet weights (transfer learning offline) and runs it;
3. saves a small LeNet-5 model, opens it in the window's Prediction tab and classifies one photo
   there (PHOTO, or a generated JPEG), and with the core Predictor;
4. exports that model to TorchScript and, if onnx/onnxruntime are bundled, to ONNX;

printing how long each step took (``window shown after`` is the start-up time, measured from the
moment this script starts running, i.e. after the bootloader has loaded Python). Settings and
models go to a temporary folder: the user's own settings are not touched.

``catdog-gui --version`` prints the version. Anything else goes to ``catdog_gui.gui.app.main``.
"""

from __future__ import annotations

import os
import sys
import time

T0 = time.perf_counter()


def _log(msg: str) -> None:
    print(f"[smoke {time.perf_counter() - T0:6.2f}s] {msg}", flush=True)


def _wait(signal, ok, timeout_s: float) -> bool:
    """Run the event loop until ``ok()`` or ``signal`` fires, at most ``timeout_s``."""
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


def smoke_test(photo: str | None = None) -> int:
    import tempfile
    from pathlib import Path

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    tmp = Path(tempfile.mkdtemp(prefix="catdog-smoke-"))
    os.environ["CATDOG_SETTINGS"] = str(tmp / "settings.ini")
    _log(f"frozen={getattr(sys, 'frozen', False)} python={sys.version.split()[0]} tmp={tmp}")

    from PySide6.QtCore import QCoreApplication
    from PySide6.QtWidgets import QApplication

    QCoreApplication.setOrganizationName("catdog-gui")
    QCoreApplication.setApplicationName("catdog-gui")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    from catdog_gui.gui.common import style
    from catdog_gui.gui.main_window import MainWindow

    style.apply(app)
    win = MainWindow(models_folder=str(tmp / "models"))
    win.show()
    app.processEvents()
    _log(f"window shown after {time.perf_counter() - T0:.2f}s ({win.windowTitle()!r})")
    if not _wait(win.backend_ready, lambda: win.ready, 180):
        _log("FAIL: the background warm-up did not finish in 180 s")
        return 1
    _log(f"warm-up done: device {win.device}")

    import torch

    from catdog_gui.core.models import create_model, get_spec
    from catdog_gui.core.models.backbones import bundled_lite0_path
    from catdog_gui.core.storage.modelfile import save_model

    weights = bundled_lite0_path()
    lite = create_model("efficientnet_lite0", 2, pretrained=True).eval()
    with torch.no_grad():
        feats = lite.features(torch.zeros(1, 3, 224, 224)) if hasattr(lite, "features") else lite(torch.zeros(1, 3, 224, 224))
    _log(f"efficientnet_lite0 pretrained weights loaded from {weights} ({weights.stat().st_size / 1e6:.1f} MB), "
         f"output {tuple(feats.shape)}")

    torch.manual_seed(0)
    spec = get_spec("lenet5")
    model_path = tmp / "lenet5.pt"
    save_model(model_path, create_model("lenet5", 2), model_name="lenet5", classes=["cat", "dog"],
               image_size=spec.default_image_size, mean=spec.mean, std=spec.std)
    if photo is None:
        import numpy as np
        from PIL import Image

        photo = str(tmp / "photo.jpg")
        rng = np.random.default_rng(0)
        Image.fromarray(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)).save(photo)

    from catdog_gui.core.inference.predictor import Predictor

    pred = Predictor(model_path, "cpu").predict(photo)
    _log(f"core Predictor: {Path(photo).name}: {pred.label} ({pred.describe()})")

    tab = win.prediction_tab
    if tab is None:
        _log("FAIL: no Prediction tab")
        return 1
    loaded: list = []
    win.current.changed.connect(loaded.append)
    failed: list = []
    win.current.failed.connect(lambda _path, msg: failed.append(msg))
    win.set_model(str(model_path))
    _wait(win.current.changed, lambda: bool(loaded or failed), 60)
    if failed:
        _log(f"FAIL: the Prediction tab could not open the model: {failed[0]}")
        return 1
    done: list = []
    tab.results_ready.connect(lambda: done.append(True))
    tab.classify_paths([photo])
    if not _wait(tab.results_ready, lambda: bool(done), 60):
        _log("FAIL: the Prediction tab did not classify the photo within 60 s")
        return 1
    _log("Prediction tab classified the photo")

    from catdog_gui.core.inference.export import export_model, read_metadata

    for fmt, name in (("torchscript", "m.torchscript.pt"), ("onnx", "m.onnx")):
        try:
            out = export_model(model_path, fmt, tmp / name)
            _log(f"export {fmt}: {out.stat().st_size / 1e3:.0f} kB, classes {read_metadata(out)['classes']}")
        except Exception as e:  # ONNX is optional in a build without onnx/onnxruntime
            if fmt == "onnx" and "pip install" in str(e):
                _log(f"export onnx: not in this build ({e})")
            else:
                _log(f"FAIL: export {fmt}: {type(e).__name__}: {e}")
                return 1

    win.close()
    app.processEvents()
    _log(f"OK: smoke test passed in {time.perf_counter() - T0:.2f}s")
    return 0


def main() -> int:
    argv = sys.argv[1:]
    if argv[:1] == ["--smoke-test"]:
        try:
            return smoke_test(argv[1] if len(argv) > 1 else None)
        except Exception:
            import traceback

            traceback.print_exc()
            _log("FAIL: exception")
            return 1
    if argv[:1] == ["--version"]:
        from catdog_gui import __version__

        print(f"catdog-gui {__version__}")
        return 0
    from catdog_gui.gui.app import main as app_main

    return app_main()


if __name__ == "__main__":
    sys.exit(main())
