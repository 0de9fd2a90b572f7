"""The Training tab: real short runs in the background with live plots and a model file, stop,
pause/resume, errors, closing mid-run, model choice rules; and the Task/TrainingWorker plumbing."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication

from catdog_gui.gui.workers import Task


@pytest.fixture
def ready(qtbot, window, tiny_dataset, gui):
    """A window with the tiny dataset scanned and LeNet-5 set for a short, quiet run."""
    assert gui.scan(qtbot, window.dataset_tab, tiny_dataset) is not None
    t = window.training_tab
    t.select_model("lenet5")
    t.hyper["epochs"].setValue(2)
    t.hyper["batch_size"].setValue(8)
    t.hyper["patience"].setValue(0)
    window.tabs.setCurrentWidget(t)
    return window


def _wait_batches(qtbot, t, n=1):
    qtbot.waitUntil(lambda: len(t.batch_x) >= n, timeout=30000)


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
    # plots: curves created once, with data
    assert len(t.curve_batch.getData()[0]) > 0
    assert list(t.curve_val_acc.getData()[0]) == [1, 2]
    assert len(t.curve_train_loss.getData()[1]) == 2
    # model file in the models folder, one per run, handed to the window
    path = Path(fin.best_path)
    assert path.exists() and path.parent == tmp_path / "models" and path.suffix == ".pt"
    assert ready.model_path == str(path) and path.name in ready.windowTitle()
    assert ready.save_model_action.isEnabled() and t.try_button.isEnabled() and t.continue_button.isEnabled()
    # results in words and a confusion matrix that matches the evaluation
    m = result.metrics
    assert f"({m.n} photos the model did not train on)" in t.result_label.text()
    assert t.result_label.text().startswith("Validation accuracy")
    k = len(m.classes)
    table = [[int(t.confusion.item(i, j).text().replace(",", "")) for j in range(k)] for i in range(k)]
    assert table == m.confusion and sum(map(sum, table)) == m.n
    t.show_cell(0, 1)
    assert "taken for" in t.cell_label.text()
    # "Try the model" goes to Prediction
    t.try_button.click()
    assert ready.tabs.currentIndex() == 2
    # a second run never overwrites the first model
    with qtbot.waitSignal(t.run_finished, timeout=60000) as b2:
        assert t.start_training(resume=True)  # Continue training, from the current model
    assert b2.args[0].best_path != str(path) and path.exists()


def test_stop_mid_run_keeps_train_usable(qtbot, ready):
    t = ready.training_tab
    t.hyper["epochs"].setValue(200)
    with qtbot.waitSignal(t.run_finished, timeout=60000) as blocker:
        t.train_button.click()
        _wait_batches(qtbot, t)
        ready.training_tab.stop_action.trigger()  # Esc
    assert blocker.args[0].status == "cancelled"
    qtbot.waitUntil(lambda: t.train_button.isEnabled() and not t.stop_button.isEnabled(), timeout=10000)
    assert not t.is_running()


def test_pause_and_resume(qtbot, ready):
    t = ready.training_tab
    t.hyper["epochs"].setValue(200)
    t.train_button.click()
    _wait_batches(qtbot, t)
    t.pause_button.click()
    assert t.worker.paused and t.pause_button.text() == "Resume"
    trainer = t.worker.trainer
    qtbot.waitUntil(lambda: trainer._running.is_set() is False)
    t.pause_button.click()
    assert not t.worker.paused and t.pause_button.text() == "Pause"
    n = len(t.batch_x)
    _wait_batches(qtbot, t, n + 1)  # it goes on
    with qtbot.waitSignal(t.run_finished, timeout=60000):
        t.stop()


def test_error_in_training_is_shown_and_train_comes_back(qtbot, ready, monkeypatch):
    from catdog_gui.core.training import Trainer

    def boom(self, *a, **k):
        raise RuntimeError("simulated failure")

    monkeypatch.setattr(Trainer, "_fit", boom)
    t = ready.training_tab
    with qtbot.waitSignal(t.run_finished, timeout=30000) as blocker:
        t.train_button.click()
    assert blocker.args[0].status == "failed"
    assert "simulated failure" in t.result_label.text()
    assert t.error_details.isVisibleTo(t) and "RuntimeError" in t.error_details.toPlainText()
    qtbot.waitUntil(lambda: t.train_button.isEnabled(), timeout=10000)


def test_closing_the_window_mid_run_joins_the_thread(qtbot, ready):
    t = ready.training_tab
    t.hyper["epochs"].setValue(200)
    t.train_button.click()
    _wait_batches(qtbot, t)
    worker = t.worker
    thread = worker.task._thread
    ready.close()
    assert not thread.isRunning() and t.worker is None
    assert all(th.name != "QThread" or not th.is_alive() for th in threading.enumerate())


def test_transfer_learning_switches_model_and_locks_size(window):
    t = window.training_tab
    t.select_model("lenet5")
    assert not t.hyper["image_size"].isEnabled()  # LeNet-5 original: 32x32 only
    assert t.hyper["image_size"].value() == 32
    t.transfer_check.setChecked(True)
    assert t.model_name() == "efficientnet_lite0"
    assert t.model_note.isVisibleTo(t) and "EfficientNet" in t.model_note.text()
    assert t.transfer_mode.isVisibleTo(t)
    assert t.hyper["image_size"].value() == 224 and not t.hyper["image_size"].isEnabled()
    assert t.config().pretrained
    t.select_model("lenet5_modern")
    assert not t.transfer_check.isChecked() and "no pretrained weights" in t.model_note.text()
    assert t.hyper["image_size"].isEnabled()
    spec = t.specs["lenet5_modern"]
    assert t.hyper["epochs"].value() == spec.defaults["epochs"]


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


def test_tensorboard_checkbox_logs_the_run_and_persists(qtbot, ready, tmp_path, make_window):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    t = ready.training_tab
    t.tensorboard_check.setChecked(True)
    with qtbot.waitSignal(t.run_finished, timeout=60000) as blocker:
        assert t.start_training()
    assert blocker.args[0].status == "completed"
    runs = [p for p in (tmp_path / "models" / "runs").iterdir() if p.is_dir()]
    assert len(runs) == 1
    acc = EventAccumulator(str(runs[0]))
    acc.Reload()
    assert [e.step for e in acc.Scalars("accuracy/val")] == [1, 2]
    assert make_window().training_tab.tensorboard_check.isChecked()  # remembered for next time


def test_augmentation_checkbox_sets_recommended_epochs(window):
    from catdog_gui.core.augment import AugmentSettings
    from catdog_gui.core.models import get_spec

    t = window.training_tab
    t.select_model("lenet5")
    d = get_spec("lenet5").defaults
    t.augment_check.setChecked(True)
    want = AugmentSettings(enabled=True).recommended_epochs(d["epochs"], d["patience"])
    assert (t.hyper["epochs"].value(), t.hyper["patience"].value()) == want
    assert t.config().epochs == want[0] and t.config().augment.enabled
    assert "Augmentation on" in t.model_note.text()
    t.augment_check.setChecked(False)
    assert (t.hyper["epochs"].value(), t.hyper["patience"].value()) == (d["epochs"], d["patience"])


def test_augmentation_checkbox_keeps_epochs_the_user_chose(window):
    t = window.training_tab
    t.select_model("lenet5")
    t.hyper["epochs"].setValue(7)
    t.augment_check.setChecked(True)
    assert t.hyper["epochs"].value() == 7
