"""The training process: the window's runs train in a child process. Crash drills: whatever happens to the
child (killed, a Python exception, a segfault, out of memory, stuck in a native call), the window lives, says
what happened, Train comes back, the run is recorded as failed with the reason, and the best model saved
before the fault opens and predicts."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the drills send POSIX signals")

#: a child that misbehaves once the first epoch (its best model saved) has been announced
AFTER_FIRST_EPOCH = """
from catdog_gui.core.events import EpochEnd
from catdog_gui.core.training.trainer import Trainer

_emit = Trainer._emit

def _emit_then_fault(self, ev):
    _emit(self, ev)
    if isinstance(ev, EpochEnd) and ev.epoch == 1:
        fault()

Trainer._emit = _emit_then_fault
"""


@pytest.fixture
def ready(qtbot, window, tiny_dataset, gui):
    """A window with the tiny dataset scanned and LeNet-5 set for a run of many short epochs."""
    assert gui.scan(qtbot, window.dataset_tab, tiny_dataset) is not None
    t = window.training_tab
    t.select_model("lenet5")
    t.form.hyper["epochs"].setValue(50)
    t.form.hyper["batch_size"].setValue(8)
    t.form.hyper["patience"].setValue(0)
    return window


def _train(qtbot, t, during=None, timeout=60000):
    with qtbot.waitSignal(t.run_finished, timeout=timeout) as blocker:
        assert t.start_training()
        if during is not None:
            qtbot.waitUntil(lambda: t.run is not None and len(t.run.epochs) >= 1, timeout=timeout)
            during(t)
    fin = blocker.args[0]
    qtbot.waitUntil(lambda: t.train_button.isEnabled(), timeout=20000)
    return fin


def _check_aftermath(window, fin, words: str):
    """The window lives and says it; the run is recorded as failed with the reason; the model kept opens."""
    from catdog_gui.core.inference.predictor import Predictor
    from tests.helpers import make_image

    t = window.training_tab
    assert fin.status == "failed" and words in fin.reason, fin.reason
    assert words in t.results.result_label.text()
    assert t.train_button.isEnabled() and not t.is_running()
    record = t.runs.store.runs()[0]
    assert record.status == "failed" and words in record.reason and record.id == t.record_id
    assert fin.best_path and fin.best_epoch >= 1 and "is kept" in fin.reason
    p = Predictor(fin.best_path, device="cpu")
    photo = make_image(Path(fin.best_path).parent / "photo.jpg", (200, 40, 40))
    assert p.predict(str(photo)).label in ("cat", "dog")
    return record


def test_a_child_killed_mid_epoch(qtbot, ready):
    fin = _train(qtbot, ready.training_tab, during=lambda t: os.kill(t.run.worker.pid, signal.SIGKILL))
    _check_aftermath(ready, fin, "SIGKILL")


def test_a_child_that_segfaults(qtbot, ready, child_preload):
    child_preload(AFTER_FIRST_EPOCH.replace("fault()", "import ctypes; ctypes.string_at(0)"))
    fin = _train(qtbot, ready.training_tab)
    _check_aftermath(ready, fin, "SIGSEGV")


def test_a_child_that_aborts(qtbot, ready, child_preload):
    child_preload(AFTER_FIRST_EPOCH.replace("fault()", "import os; os.abort()"))
    fin = _train(qtbot, ready.training_tab)
    _check_aftermath(ready, fin, "SIGABRT")


def test_a_child_that_raises(qtbot, ready, child_preload):
    """A Python exception in training: its traceback behind Details, the best model so far kept."""
    child_preload(AFTER_FIRST_EPOCH.replace("fault()", "raise ZeroDivisionError('planted')"))
    t = ready.training_tab
    fin = _train(qtbot, t)
    assert fin.status == "failed" and "ZeroDivisionError" in fin.reason and "planted" in fin.traceback
    assert "ZeroDivisionError" in t.results.error_details.toPlainText()
    assert t.runs.store.runs()[0].status == "failed"
    assert fin.best_path and Path(fin.best_path).is_file()


def test_a_child_out_of_memory(qtbot, ready, child_preload):
    """Memory capped in the child (a resource limit, as a small machine would): the run says "out of
    memory" and what to do, and keeps the best model so far."""
    child_preload(AFTER_FIRST_EPOCH.replace("fault()", "eat()") + """
def eat():
    import resource
    with open("/proc/self/statm") as f:
        used = int(f.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (used + 300 * 2**20, resource.RLIM_INFINITY))
    hog = []
    while True:
        hog.append(bytearray(50 * 2**20))
""")
    t = ready.training_tab
    fin = _train(qtbot, t)
    assert fin.status == "failed" and "out of memory" in fin.reason and "batch size" in fin.reason
    assert "out of memory" in t.results.result_label.text()
    assert t.runs.store.runs()[0].status == "failed"


def test_a_child_that_stops_answering(qtbot, ready, child_preload, monkeypatch):
    """Stuck (here: asleep in the training thread): Stop gets no answer, so the window ends the child after
    a few seconds, says so, and keeps the best model saved before."""
    from catdog_gui.gui.common.training_process import TrainingProcess

    monkeypatch.setattr(TrainingProcess, "STOP_TIMEOUT_S", 2.0)
    child_preload(AFTER_FIRST_EPOCH.replace("fault()", "import time; time.sleep(3600)"))
    t = ready.training_tab
    fin = _train(qtbot, t, during=lambda t: t.stop())
    _check_aftermath(ready, fin, "stopped answering")


def test_stop_keeps_the_best_model_and_the_run_completes_normally(qtbot, ready):
    """Stop crosses the process boundary: the child ends the run after the current batch, cancelled, with
    the best model so far measured and saved."""
    t = ready.training_tab
    fin = _train(qtbot, t, during=lambda t: t.stop())
    assert fin.status == "cancelled" and fin.metrics is not None and 1 <= len(fin.history) < 50
    assert Path(fin.best_path).is_file() and t.runs.store.runs()[0].status == "cancelled"


def test_two_training_processes_from_the_window(qtbot, ready, tmp_path):
    """Several GPUs from the Train button: the run is launched through torchrun, rank 0 streaming the
    events. Here 2 CPU processes (gloo) stand in for 2 GPUs; the window says which devices it used, and
    the model file has the format of a 1-process run's."""
    from catdog_gui.core.storage.modelfile import load_model

    t = ready.training_tab
    t.form.hyper["epochs"].setValue(2)
    one = _train(qtbot, t)
    assert one.status == "completed"
    t.process_spin.setMaximum(2)  # the window shows this with 2 or more GPUs; the test has none
    t.process_spin.setValue(2)
    two = _train(qtbot, t, timeout=120000)
    assert two.status == "completed", two.reason
    assert "x 2 processes (gloo)" in t.run.device and "2 processes" in t.progress.stats_label.text()
    assert t.runs.store.runs()[0].device == t.run.device
    _, info1 = load_model(one.best_path)
    model2, info2 = load_model(two.best_path)
    assert info2.classes == info1.classes and info2.image_size == info1.image_size
    assert set(info2.metrics) == set(info1.metrics) and info2.metrics["n_val"] == info1.metrics["n_val"]
    assert sorted(model2.state_dict()) == sorted(load_model(one.best_path)[0].state_dict())


def test_the_windows_long_jobs_run_in_a_process_of_their_own(qtbot, tiny_model, tiny_dataset):
    """A test-folder evaluation (like the review and the fine-tuning estimate) runs in a child process:
    the same answer as in the window's interpreter; a child killed mid-job is a message, not a dead window."""
    from catdog_gui.core.inference.evaluation import evaluate_folder
    from catdog_gui.core.inference.predictor import Predictor
    from catdog_gui.gui.common.training_process import ProcessTask

    task = ProcessTask("catdog_gui.core.inference.evaluation:evaluate_model_file", str(tiny_model),
                       str(tiny_dataset), "cpu", allow_overlap=True)  # the model trained on some of these
    progress = []
    task.progress.connect(lambda d, t: progress.append((d, t)))
    with qtbot.waitSignal(task.finished, timeout=60000):
        with qtbot.waitSignal(task.done, timeout=60000) as done:
            task.start()
    metrics, skipped = done.args[0]
    here, here_skipped = evaluate_folder(Predictor(str(tiny_model), "cpu"), str(tiny_dataset), allow_overlap=True)
    assert task.pid != os.getpid() and progress and progress[-1][0] == progress[-1][1]
    assert (metrics.accuracy, metrics.confusion, skipped) == (here.accuracy, here.confusion, here_skipped)
    assert metrics.overlap == here.overlap

    stuck = ProcessTask("time:sleep", 600)
    failed = []
    stuck.failed.connect(failed.append)
    with qtbot.waitSignal(stuck.finished, timeout=60000):
        stuck.start()
        qtbot.waitUntil(lambda: stuck.pid is not None, timeout=30000)
        os.kill(stuck.pid, signal.SIGKILL)
    assert failed and "SIGKILL" in failed[0]

