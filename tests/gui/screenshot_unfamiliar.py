"""Screenshots of the unfamiliar-photo verdict and the reliability diagram (run by hand, not a test):

    xvfb-run -a python tests/gui/screenshot_unfamiliar.py [DATASET]

Trains the default pretrained model (EfficientNet-Lite1, frozen backbone) on DATASET (default
$CATDOG_TEST_DATA), shows its result in the Training tab's result panel (the reliability diagram),
then classifies a validation cat photo and scikit-image's coffee cup and rocket on the Prediction
tab. PNGs: docs/screenshots/prediction-unfamiliar.png and training-reliability.png.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
from pathlib import Path

from PySide6.QtWidgets import QApplication

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "gui"))
from eventloop import wait_until  # noqa: E402

OUT = ROOT / "docs" / "screenshots"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("data", nargs="?", default=os.environ.get("CATDOG_TEST_DATA"))
    args = ap.parse_args()
    app = QApplication.instance() or QApplication(sys.argv)
    from catdog_gui.gui.common import style

    style.apply(app)
    from catdog_gui.core.config import make_config
    from catdog_gui.core.training.trainer import Trainer
    from catdog_gui.gui.models.current_model import CurrentModel
    from catdog_gui.gui.prediction.tab import PredictionTab
    from catdog_gui.gui.training.results import ResultsPanel

    tmp = Path(tempfile.mkdtemp())
    model = tmp / "lite1.pt"
    trainer = Trainer(make_config(pretrained=True, seed=0))
    fin = trainer.fit(Path(args.data), out_path=model)
    print(fin.status, fin.reason, f"val acc {fin.best_val_acc:.3f}")

    panel = ResultsPanel()
    panel.resize(1100, 430)
    panel.show_finished(fin)
    panel.show()
    app.processEvents()
    OUT.mkdir(parents=True, exist_ok=True)
    panel.grab().save(str(OUT / "training-reliability.png"))

    from PIL import Image
    from skimage import data as skd

    photos = [str(trainer.dataset.val[0].path)]
    for name in ("coffee", "rocket"):
        buf = io.BytesIO()
        Image.fromarray(getattr(skd, name)()).save(buf, "JPEG", quality=92)
        path = tmp / f"{name}.jpg"
        path.write_bytes(buf.getvalue())
        photos.append(str(path))
    current = CurrentModel("cpu")
    tab = PredictionTab(current)
    tab.resize(1280, 760)
    tab.show()
    current.open(str(model))
    wait_until(lambda: current.predictor is not None, 60)
    tab.classify_paths(photos)
    wait_until(lambda: len(tab.cards) == 3 and all(c.prediction is not None for c in tab.cards), 60)
    for c in tab.cards:
        p = c.prediction
        print(c.item.name, p.label, f"{p.confidence:.3f}", "unfamiliar" if p.unfamiliar else "familiar",
              f"{p.unfamiliar_score:.3f} / {p.unfamiliar_threshold:.3f}")
    app.processEvents()
    tab.grab().save(str(OUT / "prediction-unfamiliar.png"))
    tab.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
