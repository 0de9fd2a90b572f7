"""The Training tab: real short runs in the background with live plots and a model file, stop,
pause/resume, errors, closing mid-run, model choice rules; the TrainingRun it draws (headless); the
Advanced form derived from TrainConfig and its saved settings; the split reaching the Dataset tab;
the weights-file picker; confusion-cell photos; and the Task plumbing."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication

from catdog_gui.gui.common.workers import Task


@pytest.fixture
def ready(qtbot, window, tiny_dataset, gui):
    """A window with the tiny dataset scanned and LeNet-5 set for a short, quiet run."""
    assert gui.scan(qtbot, window.dataset_tab, tiny_dataset) is not None
    t = window.training_tab
    t.select_model("lenet5")
    t.form.hyper["epochs"].setValue(2)
    t.form.hyper["batch_size"].setValue(8)
    t.form.hyper["patience"].setValue(0)
    window.tabs.setCurrentWidget(t)
    return window


def _wait_batches(qtbot, t, n=1):
    qtbot.waitUntil(lambda: t.run is not None and len(t.run.batch_x) >= n, timeout=30000)


def test_short_run_plots_saves_and_evaluates(qtbot, ready, tmp_path):
    t = ready.training_tab
    with qtbot.waitSignal(t.run_finished, timeout=60000) as blocker:
        t.train_button.click()
        assert not t.train_button.isEnabled() and t.stop_button.isEnabled()
        assert not t.start_training()  # no second run while one is going
    result = blocker.args[0]
    fin = result
    assert fin.status == "completed", fin.reason
    qtbot.waitUntil(lambda: t.train_button.isEnabled(), timeout=10000)
    # plots: curves created once, with data (the run's, as drawn)
    p = t.plots
    assert len(p.curve_batch.getData()[0]) == len(t.run.batch_x) > 0
    assert list(p.curve_val_acc.getData()[0]) == [1, 2]
    assert len(p.curve_train_loss.getData()[1]) == 2
    assert list(p.best_point.getData()[0]) == [fin.best_epoch]  # the best epoch is marked
    # model file in the models folder, one per run, opened as the window's current model
    path = Path(fin.best_path)
    assert path.exists() and path.parent == tmp_path / "models" and path.suffix == ".pt"
    assert t.run.model_path == str(path)
    qtbot.waitUntil(lambda: ready.current.path == str(path), timeout=30000)
    assert ready.model_path == str(path) and path.name in ready.windowTitle()
    assert ready.save_model_action.isEnabled() and t.results.try_button.isEnabled() and t.continue_button.isEnabled()
    # results in words and a confusion matrix that matches the evaluation
    m = result.metrics
    assert f"({m.n} photos the model did not train on)" in t.results.result_label.text()
    assert t.results.result_label.text().startswith("Validation accuracy")
    k = len(m.classes)
    table = [[int(t.results.confusion.item(i, j).text().replace(",", "")) for j in range(k)] for i in range(k)]
    assert table == m.confusion and sum(map(sum, table)) == m.n
    t.results.show_cell(0, 1)
    assert "taken for" in t.results.cell_label.text()
    _check_diagonal_cell(qtbot, t, m)
    # "Try the model" goes to Prediction
    t.results.try_button.click()
    assert ready.tabs.currentIndex() == 2
    # a second run never overwrites the first model
    with qtbot.waitSignal(t.run_finished, timeout=60000) as b2:
        assert t.start_training(resume=True)  # Continue training, from the current model
    assert b2.args[0].best_path != str(path) and path.exists()


def _check_diagonal_cell(qtbot, t, m):
    """A correct (diagonal) cell shows its photos too, least confident first, verdict drawn on each."""
    from PySide6.QtGui import QImage

    cls = m.classes[0]
    t.results.show_cell(0, 0)
    assert "recognised correctly, least confident first" in t.results.cell_label.text()
    thumbs = t.results.cell_thumbs()
    assert len(thumbs) == min(m.confusion[0][0], 60) > 0 and t.results.cell_scroll.isVisibleTo(t)
    confs = [th.item.confidence for th in thumbs]
    assert confs == sorted(confs) and all(th.item.true == th.item.predicted == cls for th in thumbs)
    assert {th.item.path for th in thumbs} == {x.path for x in m.correct if x.true == cls}
    th = thumbs[0]
    assert th.caption == (f"{cls} ✓", f"{th.item.confidence * 100:.1f}% sure")  # never near 100% for the least sure
    qtbot.waitUntil(lambda: all(x.pixmap() is not None and not x.pixmap().isNull() for x in thumbs), timeout=20000)
    # the verdict's words are drawn on the photo, not only in the tooltip
    caption = th.caption

    def render(words):
        th.caption = words
        return th.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)

    shown, other = render(caption), render(("x", "y"))
    th.caption = caption
    assert shown != other


def test_stop_mid_run_keeps_train_usable(qtbot, ready):
    t = ready.training_tab
    t.form.hyper["epochs"].setValue(200)
    with qtbot.waitSignal(t.run_finished, timeout=60000) as blocker:
        t.train_button.click()
        _wait_batches(qtbot, t)
        ready.training_tab.stop_action.trigger()  # Esc
    assert blocker.args[0].status == "cancelled"
    qtbot.waitUntil(lambda: t.train_button.isEnabled() and not t.stop_button.isEnabled(), timeout=10000)
    assert not t.is_running()


def test_pause_stops_the_batches_and_resume_brings_them_back(qtbot, ready):
    from catdog_gui.gui.models.training_run import RunState

    t = ready.training_tab
    t.form.hyper["epochs"].setValue(200)
    t.train_button.click()
    _wait_batches(qtbot, t)
    run = t.run
    t.pause_button.click()
    assert run.state is RunState.PAUSED and run.worker.paused and t.pause_button.text() == "Resume"
    # the batch that was running when Pause was pressed may still report; after that, nothing
    with qtbot.waitSignal(run.batches_added, timeout=1000, raising=False):
        pass
    n = len(run.batch_x)
    with qtbot.waitSignal(run.batches_added, timeout=1500, raising=False) as quiet:
        pass
    assert not quiet.signal_triggered, "batches kept coming while paused"
    assert len(run.batch_x) == n
    t.pause_button.click()
    assert run.state is RunState.RUNNING and t.pause_button.text() == "Pause"
    with qtbot.waitSignal(run.batches_added, timeout=10000):
        pass  # it goes on
    assert len(run.batch_x) > n
    with qtbot.waitSignal(t.run_finished, timeout=60000):
        t.stop()


def test_error_in_training_is_shown_and_train_comes_back(qtbot, ready, child_preload):
    child_preload("""
        from catdog_gui.core.training.trainer import Trainer

        def boom(self, *a, **k):
            raise RuntimeError("simulated failure")

        Trainer._fit = boom
    """)
    t = ready.training_tab
    with qtbot.waitSignal(t.run_finished, timeout=30000) as blocker:
        t.train_button.click()
    assert blocker.args[0].status == "failed"
    assert "simulated failure" in t.results.result_label.text()
    assert t.results.error_details.isVisibleTo(t) and "RuntimeError" in t.results.error_details.toPlainText()
    qtbot.waitUntil(lambda: t.train_button.isEnabled(), timeout=10000)


def test_a_setting_the_engine_refuses_is_shown_and_nothing_starts(qtbot, ready, monkeypatch):
    """The config is checked once, where it enters the engine (the Trainer, in the training process): the
    window says what is wrong, Train comes back, and no run is recorded (nothing started)."""
    from dataclasses import replace

    t = ready.training_tab
    good = t.form.config
    monkeypatch.setattr(t.form, "config", lambda: replace(good(), epochs=0))
    n_runs = len(t.runs.store.runs())
    with qtbot.waitSignal(t.run_finished, timeout=60000) as blocker:
        assert t.start_training()
    fin = blocker.args[0]
    assert fin.status == "failed" and fin.user_error and "epochs must be between" in fin.reason
    assert "epochs" in t.results.result_label.text().lower()
    qtbot.waitUntil(lambda: t.train_button.isEnabled(), timeout=10000)
    assert len(t.runs.store.runs()) == n_runs and not fin.best_path


def test_closing_the_window_mid_run_joins_the_thread(qtbot, ready):
    """Closing the window mid-run ends the training process and joins the thread that watched it."""
    t = ready.training_tab
    t.form.hyper["epochs"].setValue(200)
    t.train_button.click()
    _wait_batches(qtbot, t)
    run = t.run
    worker = run.worker
    pid = worker.pid
    assert worker.is_running() and _alive(pid)
    ready.close()
    assert not worker.is_running() and not _alive(pid)
    assert not t.is_running() and not run.is_active() and t.run is None


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, ended but not yet reaped, counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def test_transfer_learning_switches_model_and_locks_size(window):
    t = window.training_tab
    t.select_model("lenet5")
    assert not t.form.hyper["image_size"].isEnabled()  # LeNet-5 original: 32x32 only
    assert t.form.hyper["image_size"].value() == 32
    t.form.transfer_check.setChecked(True)
    from catdog_gui.core.config import DEFAULT_PRETRAINED_MODEL
    from catdog_gui.core.models import get_spec

    assert t.model_name() == DEFAULT_PRETRAINED_MODEL
    assert t.form.model_note.isVisibleTo(t) and "EfficientNet" in t.form.model_note.text()
    assert t.form.transfer_mode.isVisibleTo(t)
    size = get_spec(DEFAULT_PRETRAINED_MODEL).default_image_size
    assert t.form.hyper["image_size"].value() == size and not t.form.hyper["image_size"].isEnabled()
    assert t.config().pretrained
    t.select_model("lenet5_modern")
    assert not t.form.transfer_check.isChecked() and "no pretrained weights" in t.form.model_note.text()
    assert t.form.hyper["image_size"].isEnabled()
    spec = t.specs["lenet5_modern"]
    assert t.form.hyper["epochs"].value() == spec.defaults["epochs"]


def test_train_needs_a_dataset(window):
    t = window.training_tab
    assert not t.train_button.isEnabled()
    assert "Dataset tab" in t.train_button.toolTip()
    assert not t.start_training()


def test_discarded_task_never_delivers(qtbot):
    """A stale run's signals never reach the screen, even ones already queued."""
    go = threading.Event()
    got = []

    def work(state):
        for i in range(50):
            state.emit(i)
            if i == 5:
                go.wait(5)
        return "done"

    task = Task(work)
    task.partial.connect(got.append)
    task.done.connect(got.append)
    task.start()
    qtbot.waitUntil(lambda: len(got) >= 1)
    task.discard()
    go.set()
    task.wait()
    QApplication.processEvents()
    assert "done" not in got and len(got) <= 6


def test_task_reports_progress_done_and_failures(qtbot):
    from catdog_gui.core.errors import CatdogError

    ok = Task(lambda st: (st.progress(1, 2), st.progress(2, 2), 42)[-1])
    prog, done = [], []
    ok.progress.connect(lambda d, n: prog.append((d, n)))
    ok.done.connect(done.append)
    with qtbot.waitSignal(ok.finished, timeout=5000):
        ok.start()
    assert done == [42] and prog[-1] == (2, 2)

    def bad(st):
        raise CatdogError("the folder is gone")

    t = Task(bad)
    with qtbot.waitSignal(t.failed, timeout=5000) as b:
        t.start()
    assert b.args == ["the folder is gone"]
    t.wait()


def test_a_task_is_running_until_its_outcome_is_delivered(qtbot):
    """The thread ends before its queued ``failed`` reaches the GUI thread: a view asking
    "running?" in between must not see an idle task with no message (CI saw exactly that:
    the download dialog idle, still saying "Connecting…")."""
    from catdog_gui.core.errors import CatdogError

    def bad(st):
        raise CatdogError("offline")

    seen = []
    t = Task(bad)
    t.failed.connect(lambda m: seen.append((m, t.is_running())))
    t.start()
    t.wait()  # the thread is over; its outcome is still queued
    assert t.is_running() and seen == []
    qtbot.waitUntil(lambda: bool(seen), timeout=5000)
    assert seen == [("offline", False)] and not t.is_running()


def test_tensorboard_checkbox_logs_the_run_and_persists(qtbot, ready, tmp_path, make_window):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    t = ready.training_tab
    t.form.tensorboard_check.setChecked(True)
    with qtbot.waitSignal(t.run_finished, timeout=60000) as blocker:
        assert t.start_training()
    assert blocker.args[0].status == "completed"
    runs = [p for p in (tmp_path / "models" / "runs").iterdir() if p.is_dir()]
    assert len(runs) == 1
    acc = EventAccumulator(str(runs[0]))
    acc.Reload()
    assert [e.step for e in acc.Scalars("accuracy/val")] == [1, 2]
    assert make_window().training_tab.form.tensorboard_check.isChecked()  # remembered for next time


def test_augmentation_checkbox_sets_recommended_epochs(window):
    from catdog_gui.core.data.augment import AugmentSettings
    from catdog_gui.core.models import get_spec

    t = window.training_tab
    t.select_model("lenet5")
    d = get_spec("lenet5").defaults
    t.form.augment_check.setChecked(True)
    want = AugmentSettings(enabled=True).recommended_epochs(d["epochs"], d["patience"])
    assert (t.form.hyper["epochs"].value(), t.form.hyper["patience"].value()) == want
    assert t.config().epochs == want[0] and t.config().augment.enabled
    assert "Augmentation on" in t.form.model_note.text()
    t.form.augment_check.setChecked(False)
    assert (t.form.hyper["epochs"].value(), t.form.hyper["patience"].value()) == (d["epochs"], d["patience"])


def test_augmentation_checkbox_keeps_epochs_the_user_chose(window):
    t = window.training_tab
    t.select_model("lenet5")
    t.form.hyper["epochs"].setValue(7)
    t.form.augment_check.setChecked(True)
    assert t.form.hyper["epochs"].value() == 7


# ---------------------------------------------------------------------------------- TrainingRun


def test_training_run_records_a_real_run_without_any_widget(qtbot, tiny_dataset, tmp_path):
    from catdog_gui.core.config import TrainConfig
    from catdog_gui.core.events import Status
    from catdog_gui.gui.models.training_run import RunState, TrainingRun

    run = TrainingRun()
    states, seen_eta, chunks = [], [], []
    run.state_changed.connect(states.append)
    run.batches_added.connect(lambda ch: chunks.append(len(ch.events)))
    run.epoch_added.connect(lambda ev: seen_eta.append((run.eta_s, ev.eta_s, run.best_epoch, ev.best_epoch)))
    cfg = TrainConfig.for_model("lenet5", epochs=3, batch_size=8, patience=0)
    with qtbot.waitSignal(run.ended, timeout=60000):
        run.start(cfg, str(tiny_dataset), tmp_path / "m.pt")
        assert run.is_active() and run.config is cfg
    fin = run.finished_event
    assert fin.status is Status.COMPLETED and run.status is Status.COMPLETED, fin.reason
    assert states == [RunState.PREPARING, RunState.RUNNING, RunState.FINISHED] and not run.is_active()
    # per-epoch curves: one point per epoch of the Finished history
    assert len(run.epochs) == len(fin.history) == 3
    assert [(e.epoch, e.val_loss, e.val_acc) for e in run.epochs] == [(e.epoch, e.val_loss, e.val_acc)
                                                                      for e in fin.history]
    # the ETA and best epoch are the trainer's, never recomputed
    assert [(a, b) for a, b, _, _ in seen_eta] == [(e.eta_s, e.eta_s) for e in fin.history]
    assert any(a > 0 for a, *_ in seen_eta) and run.eta_s == fin.history[-1].eta_s
    assert all(a == b for _, _, a, b in seen_eta) and run.best_epoch == fin.best_epoch
    assert run.images_per_s == fin.history[-1].images_per_s
    # per-batch loss, x in fractional epochs: steps/epoch points per epoch, ending at epoch 3
    steps = run.last_batch.steps
    assert len(run.batch_x) == len(run.batch_loss) == len(run.batch_smooth) == 3 * steps == sum(chunks)
    assert run.batch_x[0] == 1 / steps and run.batch_x[-1] == 3.0 and run.batch_x == sorted(run.batch_x)
    assert run.batch_smooth[0] == run.batch_loss[0] and run.batch_smooth[1] != run.batch_loss[1]
    # the end
    assert run.metrics is fin.metrics and run.metrics.n == run.n_val > 0
    assert run.model_path == fin.best_path == str(tmp_path / "m.pt") and Path(run.model_path).exists()
    assert run.device and run.mode == "scratch" and run.n_train > 0 and run.classes == ("cat", "dog")
    assert run.epochs_total == 3 and run.started_at <= run.ended_at
    with pytest.raises(RuntimeError):
        run.start(cfg, str(tiny_dataset), tmp_path / "again.pt")  # one run per TrainingRun


def test_a_discarded_run_never_reaches_the_tab(qtbot, ready):
    t = ready.training_tab
    t.form.hyper["epochs"].setValue(200)
    t.train_button.click()
    _wait_batches(qtbot, t)
    old = t.run
    got = []
    old.batches_added.connect(got.append)
    old.finished.connect(got.append)
    t.shutdown()
    assert not old.is_active() and old.wait(10000)
    n = len(got)
    with qtbot.waitSignal(old.finished, timeout=500, raising=False) as late:
        pass
    assert not late.signal_triggered and len(got) == n and old.finished_event is None


# ---------------------------------------------------------------------------------- the form


def test_advanced_form_is_derived_from_train_config(window):
    from catdog_gui.core.config import TrainConfig

    t = window.training_tab
    declared = [s for s in TrainConfig.settings() if s.form]
    assert list(t.form.hyper) == [s.name for s in declared]
    assert {"val_fraction", "seed"} <= set(t.form.hyper)  # the split is in the form
    for s in declared:
        w = t.form.hyper[s.name]
        assert t.form.hyper_labels[s.name].text() == s.label and w.accessibleName() == s.label
        assert w.toolTip().startswith(s.help) and t.form.hyper_labels[s.name].toolTip() == s.help
        if s.choices:  # a combo box of the choices, set to the default
            assert [w.itemData(i) for i in range(w.count())] == list(s.choices) and w.value() == s.default
            continue
        assert (w.minimum(), w.maximum()) == (pytest.approx(s.min), pytest.approx(s.max)), s.name
        if s.step:
            assert w.singleStep() == pytest.approx(s.step), s.name
        if s.kind is float:
            assert w.decimals() >= s.decimals
        assert t.form.hyper_labels[s.name].text() == s.label and w.accessibleName() == s.label
        assert w.toolTip().startswith(s.help) and t.form.hyper_labels[s.name].toolTip() == s.help


def test_a_changed_declaration_changes_the_form(qtbot, monkeypatch):
    from dataclasses import replace

    from catdog_gui.core.config import TrainConfig
    from catdog_gui.gui.training.form import TrainingForm
    from catdog_gui.gui.models.augment_model import AugmentModel

    real = TrainConfig.settings.__func__

    def planted(cls):
        return tuple(replace(s, max=77, label="Rounds", help="planted help") if s.name == "epochs"
                     else replace(s, min=0.1, max=0.3) if s.name == "val_fraction" else s for s in real(cls))

    monkeypatch.setattr(TrainConfig, "settings", classmethod(planted))
    form = TrainingForm(AugmentModel())
    qtbot.addWidget(form)
    w = form.hyper["epochs"]
    assert w.maximum() == 77 and form.hyper_labels["epochs"].text() == "Rounds" and w.toolTip() == "planted help"
    v = form.hyper["val_fraction"]
    assert (v.minimum(), v.maximum()) == (pytest.approx(0.1), pytest.approx(0.3))


def test_stored_training_settings_round_trip_and_bad_ones_fall_back(tmp_path):
    from catdog_gui.gui.settings import Settings

    s = Settings(tmp_path / "s.ini")
    good = {"epochs": 12, "batch_size": 16, "lr": 0.0025, "image_size": 48, "seed": 7, "val_fraction": 0.3,
            "patience": 3, "model": "lenet5_modern", "pretrained": True, "transfer_mode": "finetune",
            "tensorboard": True, "weights_path": str(tmp_path / "w.pth")}
    s.set_train_values(good)
    s.sync()
    assert Settings(tmp_path / "s.ini").train_values() == good
    bad = {"epochs": "0", "batch_size": "lots", "lr": "nan", "image_size": "8", "seed": "-1",
           "val_fraction": "0.9", "patience": "2.5", "transfer_mode": "sideways", "pretrained": "perhaps"}
    for k, v in bad.items():
        s.set(f"train/{k}", v)
    s.sync()
    back = Settings(tmp_path / "s.ini").train_values()
    assert not set(bad) & set(back)  # each refused by its Setting: the tab uses the default
    assert back["model"] == "lenet5_modern" and back["tensorboard"] is True  # the good ones stay


def test_split_is_stored_and_reaches_the_dataset_tab(qtbot, make_window, tiny_dataset, gui):
    w1 = make_window()
    d, t = w1.dataset_tab, w1.training_tab
    assert gui.scan(qtbot, d, tiny_dataset).report.val_fraction == pytest.approx(0.2)
    with qtbot.waitSignal(d.scan_finished, timeout=20000) as rescan:
        with qtbot.waitSignal(w1.data.split_changed, timeout=5000) as changed:
            t.form.hyper["val_fraction"].setValue(0.3)
            t.form.hyper["seed"].setValue(5)
    assert changed.args == [pytest.approx(0.3), 5]
    report = rescan.args[0].report
    assert (report.val_fraction, report.split_seed) == (pytest.approx(0.3), 5)
    assert t.config().val_fraction == pytest.approx(0.3) and t.config().seed == 5
    assert "30% of each class" in d.report.split_label.text() and "seed 5" in d.report.split_label.text()
    assert "30%" in d.val_edit.placeholderText()
    w1.close()
    w2 = make_window(ready=False)  # before the engine loads: the first scan already splits as stored
    assert w2.data.split() == (pytest.approx(0.3), 5)  # one owner of the split: the window's DatasetModel
    assert w2.training_tab.form.split() == (pytest.approx(0.3), 5)


def test_weights_file_picker_for_downloaded_backbones(qtbot, window, tmp_path, monkeypatch, make_window):
    from catdog_gui.core.models import get_spec
    from catdog_gui.core.models import weights as W
    from catdog_gui.gui.training import form as training_form

    t = window.training_tab
    if "resnet18" not in t.specs:
        pytest.skip("no torchvision backbones in this install")
    f = t.form

    def shown():
        return f.weights_edit.isVisibleTo(t) and f.weights_label.isVisibleTo(t) and f.weights_button.isVisibleTo(t)

    t.form.advanced.set_expanded(True)
    t.select_model("lenet5")
    assert not shown()
    t.form.transfer_check.setChecked(True)  # -> efficientnet_lite0: its weights ship with the app
    assert get_spec(t.model_name()).pretrained != "download" and not shown()
    t.select_model("resnet18")
    assert t.form.transfer_check.isChecked() and shown()
    t.form.transfer_check.setChecked(False)
    assert not shown() and t.config().weights_path is None
    t.select_model("mobilenet_v3_large")
    t.form.transfer_check.setChecked(True)
    assert shown()
    weights = tmp_path / "mobilenet_v3_large-8738ca79.pth"
    weights.write_bytes(b"x")
    monkeypatch.setattr(training_form.QFileDialog, "getOpenFileName", lambda *a, **k: (str(weights), ""))
    f.weights_button.click()
    assert f.weights_edit.text() == str(weights)
    assert t.config().weights_path == str(weights) and t.config().pretrained
    t.select_model("efficientnet_lite0")
    assert not shown() and t.config().weights_path is None  # not for a model that does not use it
    t.select_model("mobilenet_v3_large")
    window.close()
    t2 = make_window().training_tab
    assert t2.form.weights_edit.text() == str(weights) and t2.config().weights_path == str(weights)
    # the offline message names this control as it is labelled
    info = W.WeightsInfo("https://example.org/w.pth", "w.pth", tmp_path / "w.pth")
    msg = str(W._unavailable("ResNet-18", info, "no connection"))
    assert f"Training > {t2.form.advanced.button.text()} > {t2.form.weights_label.text()}" in msg


def test_a_gui_run_is_recorded_compared_with_the_previous_and_evaluated(qtbot, ready, tmp_path, monkeypatch):
    """The run lands in the run store (source "gui") and the Runs tab; "Compare with the previous run"
    overlays it with the one before; "Evaluate on a test folder…" shows the test accuracy beside the
    validation result and keeps it with the run."""
    from PySide6.QtWidgets import QFileDialog

    from catdog_gui.core.storage.run_store import RunStore
    from catdog_gui.gui.models.runs_model import COL, ID_ROLE
    from tests.helpers import make_dataset
    from tests.gui.test_runs_view import _record

    store = RunStore()
    earlier = _record(store, "20200101-000000-lenet5-0000", name="an earlier run", val=0.6)
    ready.runs.reload()
    t, v = ready.training_tab, ready.runs_view
    assert not t.results.compare_button.isEnabled() and not t.results.evaluate_button.isEnabled()
    with qtbot.waitSignal(t.run_finished, timeout=60000) as blocker:
        t.train_button.click()
    fin = blocker.args[0]
    qtbot.waitUntil(lambda: t.train_button.isEnabled(), timeout=10000)
    newest = store.runs()[0]
    assert newest.source == "gui" and newest.id == t.record_id != earlier.id
    assert newest.model_path == str(Path(fin.best_path).resolve()) and newest.epochs == len(fin.history) == 2
    assert newest.val_accuracy == fin.metrics.accuracy
    p = v.proxy
    row = next(r for r in range(p.rowCount()) if p.index(r, 0).data(ID_ROLE) == newest.id)
    assert p.index(row, COL["val"]).data() == f"{fin.metrics.accuracy * 100:.1f}%"
    # compare with the previous run: the Runs tab, both selected, both overlaid
    assert t.results.compare_button.isEnabled()
    t.results.compare_button.click()
    assert ready.tabs.currentWidget() is v
    assert v.selected_ids() == [newest.id, earlier.id]
    for rec in (newest, earlier):
        assert v.plots.data_of(rec.id)["val_acc"][1] == [e["val_acc"] * 100 for e in rec.history]
    # evaluate on a test folder (the button, through the folder picker)
    ready.tabs.setCurrentWidget(t)
    folder = make_dataset(tmp_path / "test", 5, seed=7)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(folder))
    with qtbot.waitSignal(t.evaluation.finished, timeout=60000):
        t.results.evaluate_button.click()
        assert t.results.eval_bar.isVisibleTo(t) and not t.results.evaluate_button.isEnabled()
    test = store.get(newest.id).metrics["test"]
    assert test["n"] == 10 and test["folder"] == str(folder)
    shown = t.results.test_label.text()
    assert shown == f"Test folder accuracy {test['accuracy'] * 100:.1f}% (10 photos in {folder} the model never saw)"
    assert t.results.test_label.isVisibleTo(t) and t.results.result_label.text().startswith("Validation accuracy")
    assert p.index(row, COL["test"]).data() == f"{test['accuracy'] * 100:.1f}%"  # the Runs tab's test column
    # a folder of other classes: one sentence, in place
    horses = make_dataset(tmp_path / "horses", 3, classes=("cat", "horse"))
    with qtbot.waitSignal(t.evaluation.finished, timeout=60000):
        assert t.evaluate_on(str(horses))
    assert "classes the model does not know: horse" in t.results.test_label.text()
    assert t.results.test_label.property("role") == "bad"
    assert store.get(newest.id).metrics["test"]["folder"] == str(folder)  # the good result is still kept
    # the same run evaluated from the Runs tab: the Training tab's result follows
    other = make_dataset(tmp_path / "test2", 4, seed=9)
    with qtbot.waitSignal(v.evaluation.finished, timeout=60000):
        assert v.evaluate(newest.id, str(other))
    assert t.results.test_label.text().startswith("Test folder accuracy") and f"(8 photos in {other}" in \
        t.results.test_label.text()


def test_finetune_says_how_long_it_would_take_before_training(qtbot, ready, child_preload, tmp_path):
    """Choosing fine-tuning measures (here: a stand-in for the measurement, in the process that measures)
    how long it would take on this computer and says so, with the photo count, before Train is clicked;
    frozen says nothing."""
    import json

    calls = tmp_path / "calls.jsonl"
    child_preload(f"""
        import json
        from catdog_gui.core.training import estimate

        def fake_estimate(cfg, n_train, n_val, device="auto", batch=8):
            with open({str(calls)!r}, "a") as f:
                f.write(json.dumps([cfg.model, cfg.finetune_epochs, n_train, n_val]) + "\\n")
            return 754.0

        estimate.estimate_finetune_seconds = fake_estimate
    """)
    t = ready.training_tab
    note = t.form.finetune_note
    t.form.transfer_check.setChecked(True)
    assert not note.isVisibleTo(t)  # frozen: under a minute, nothing to warn about
    t.form.transfer_mode.setCurrentIndex(t.form.transfer_mode.findData("finetune"))
    qtbot.waitUntil(lambda: "12 min 34 s" in note.text(), timeout=30000)
    n_train = ready.dataset_tab.dataset.report.n_train
    assert note.isVisibleTo(t) and f"on {n_train:,} photos" in note.text()
    assert ("on this computer's CPU" in note.text()) == t.device.upper().startswith("CPU")
    logged = [json.loads(line) for line in calls.read_text().splitlines()]
    assert logged == [[t.model_name(), t.config().finetune_epochs, n_train, ready.dataset_tab.dataset.report.n_val]]
    t.form.transfer_mode.setCurrentIndex(t.form.transfer_mode.findData("frozen"))
    assert not note.isVisibleTo(t)
    t.form.transfer_mode.setCurrentIndex(t.form.transfer_mode.findData("finetune"))  # measured once per setting
    assert "12 min 34 s" in note.text() and len(calls.read_text().splitlines()) == 1


def test_trainer_notices_reach_the_status_bar(qtbot, ready, child_preload):
    """A Notice from the trainer (e.g. "onnxruntime could not load: PyTorch computes the features")
    is said in the window's status bar."""
    child_preload("""
        from catdog_gui.core.events import Notice
        from catdog_gui.core.training.trainer import Trainer

        real_fit = Trainer.fit

        def fit_with_notice(self, *a, **k):
            self._emit(Notice("onnxruntime is not installed: the features are computed with PyTorch"))
            return real_fit(self, *a, **k)

        Trainer.fit = fit_with_notice
    """)
    t = ready.training_tab
    said = []
    t.status_message.connect(said.append)
    with qtbot.waitSignal(t.run_finished, timeout=60000):
        t.train_button.click()
    assert any("onnxruntime is not installed" in s for s in said)


def test_the_learning_rate_finder_suggests_and_changes_only_the_rate_when_asked(qtbot, ready):
    """"Find…" beside the learning rate: the sweep runs in its own process with progress, draws the smoothed
    loss against the learning rate with the suggestion marked; the form is unchanged until "Use", which
    puts exactly the suggestion there (nothing else)."""
    import math

    t = ready.training_tab
    form = t.form
    before = {k: w.value() for k, w in form.hyper.items()}
    assert form.find_lr_button.isEnabled()
    form.find_lr_button.click()
    d = t.lr_finder
    assert d is not None and d.isVisible() and d.is_running()
    qtbot.waitUntil(lambda: not d.is_running(), timeout=120000)
    found = d.found
    assert found is not None and "Suggested learning rate" in d.result.text()
    xs, ys = d.curve.getData()
    assert len(xs) == len(found.lrs) and list(ys) == found.smoothed
    assert d.mark.isVisible() and d.mark.value() == math.log10(found.suggestion)
    assert {k: w.value() for k, w in form.hyper.items()} == before  # nothing changed yet
    d.use_button.click()
    after = {k: w.value() for k, w in form.hyper.items()}
    assert after.pop("lr") == pytest.approx(found.suggestion, rel=0.01)
    before.pop("lr")
    assert after == before and not d.isVisible()
    assert t.config().lr == pytest.approx(found.suggestion, rel=0.01)
