"""The Training tab's result shows the run's reliability diagram and its ECE before and after
temperature scaling, from the metrics the run finished with (and nothing for a run without them)."""

from __future__ import annotations

import numpy as np

from catdog_gui.core.inference import calibration as C
from catdog_gui.core.inference.evaluation import compute_metrics
from catdog_gui.gui.training.results import ResultsPanel


def _metrics(with_calibration: bool):
    rng = np.random.default_rng(0)
    z = rng.normal(0, 4, (400, 2))
    y = np.array([rng.choice(2, p=row) for row in C.softmax(z, 2.5)])
    m = compute_metrics(y, z.argmax(1), ["cat", "dog"])
    if with_calibration:
        m.calibration = C.calibrate(z, y).to_meta()
    return m


def test_the_result_shows_the_reliability_diagram_and_both_eces(qtbot, tmp_path):
    panel = ResultsPanel()
    qtbot.addWidget(panel)
    panel.resize(1000, 520)
    m = _metrics(True)
    panel.show_metrics(m)
    panel.show()
    diagram = panel.reliability
    assert diagram.isVisible()
    cal = C.Calibration.from_meta(m.calibration)
    assert f"ECE {cal.ece_before * 100:.2f}%" in diagram.toolTip()
    assert f"ECE {cal.ece_after * 100:.2f}%" in diagram.toolTip()
    assert cal.ece_after < cal.ece_before
    img = diagram.grab().toImage()
    assert not img.isNull() and img.width() >= 260
    # something was drawn besides the background: the bars
    colours = {img.pixel(x, y) for x in range(0, img.width(), 7) for y in range(0, img.height(), 7)}
    assert len(colours) > 5
    panel.show_metrics(_metrics(False))
    assert not diagram.isVisible()


def test_a_run_finishes_with_its_calibration(tiny_model):
    from helpers import make_dataset

    from catdog_gui.core.config import TrainConfig
    from catdog_gui.core.storage.modelfile import read_model_file
    from catdog_gui.core.training.trainer import Trainer

    data = make_dataset(tiny_model.parent / "cal_data", 12)
    out = tiny_model.parent / "cal.pt"
    fin = Trainer(TrainConfig(model="lenet5", epochs=2, seed=0, patience=0)).fit(data, out_path=out)
    info, _state = read_model_file(out)
    assert fin.metrics.calibration == info.meta["calibration"]
    assert fin.metrics.ece == info.meta["calibration"]["ece_after"]
