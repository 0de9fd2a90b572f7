"""Training in a child process vs in the window's interpreter: event-loop lateness, click-to-first-batch,
throughput and the window's memory, each path measured in the same run.

Run by hand, with nothing else running (offscreen Qt):
    python tests/benchmarks/bench_child.py [DATA] [--photos 300] [--repeats 2] [--transfer] [--finetune]
        [--no-lenet]

Both paths run in the real MainWindow: the Dataset tab's model holds DATA's first ``--photos`` photos
(half per class, through symlinks), augmentation is ticked, Train is clicked. "in-process" is the path
the window had before the training process: the harness on a QThread Task in the window's interpreter,
batch events relayed ~20 times a second (reconstructed here in ``InProcessRun``). "child, warm" takes
the ready child of ``ChildPool``; "child, cold" starts one at the click.

* lateness: a 10 ms PreciseTimer's lateness on the GUI thread from the click to the run's end (p50,
  p99, max; goal p99 < 16 ms, max < 100 ms on 2 cores), against the idle window;
* click to first batch: from the click to the first BatchChunk on the GUI thread;
* throughput: the run's mean EpochEnd.images_per_s (the trainer's own measure);
* window RSS before and after the run (the child's memory is returned when it exits).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "gui"))
DEFAULT_DATA = os.environ.get("CATDOG_TEST_DATA", str(ROOT.parent / "shared" / "datasets" / "catdog-1800"))

from PySide6.QtCore import QElapsedTimer, QObject, Qt, QTimer, Signal  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402
from eventloop import wait_until  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class Lateness:
    """A 10 ms PreciseTimer; how late each tick came (ms)."""

    def __init__(self):
        self.timer = QTimer(interval=10, timerType=Qt.TimerType.PreciseTimer)
        self.clock = QElapsedTimer()
        self.late: list[float] = []
        self.timer.timeout.connect(self._tick)

    def start(self):
        self.late.clear()
        self.clock.start()
        self._last = 0
        self.timer.start()

    def _tick(self):
        now = self.clock.nsecsElapsed() / 1e6
        self.late.append(max(0.0, now - self._last - 10.0))
        self._last = now

    def stop(self) -> dict:
        self.timer.stop()
        q = sorted(self.late) or [0.0]
        return {"p50": statistics.median(q), "p99": q[int(0.99 * (len(q) - 1))], "max": q[-1], "n": len(q)}


class InProcessRun(QObject):
    """The window's earlier path: the harness on a Task in this interpreter, batches relayed at ~20 Hz."""

    batches = Signal(object)
    epoch = Signal(object)
    result = Signal(object)
    stage = Signal(object)
    started = Signal(object)
    notice = Signal(str)
    ended = Signal()

    def __init__(self, config, data, out_path, val_dir=None, resume_from=None, parent=None, **_):
        super().__init__(parent)
        from catdog_gui.core.events import BatchChunk, EpochEnd, RunStarted, StageProgress
        from catdog_gui.core.storage.run_store import RunRecorder
        from catdog_gui.core.training.child import EventSender
        from catdog_gui.core.training.harness import train
        from catdog_gui.core.training.trainer import Trainer
        from catdog_gui.gui.common.workers import Task

        self.recorder = RunRecorder(source="gui")
        self.trainer = Trainer(config)
        self.pid = os.getpid()
        kinds = {EpochEnd: self.epoch, StageProgress: self.stage, RunStarted: self.started}

        def work(st):
            sender = EventSender(lambda msg: st.emit(msg[1]))
            fin = train(config, data, out_path, callbacks=[sender, self.recorder], interruptible=False,
                        trainer=self.trainer)
            sender.flush()
            return fin

        def dispatch(ev):
            if isinstance(ev, BatchChunk):
                self.batches.emit(ev)
            elif type(ev) in kinds:
                kinds[type(ev)].emit(ev)

        self.task = Task(work, self, name="training")
        self.task.partial.connect(dispatch)
        self.task.done.connect(self.result)
        self.task.finished.connect(self.ended)

    def start(self):
        self.task.start()
        return self

    def is_running(self):
        return self.task.is_running()

    def cancel(self):
        self.trainer.cancel()

    def discard(self):
        self.trainer.cancel()
        self.task.discard()

    def wait(self, ms=-1):
        return self.task.wait(ms)


def subset(data: Path, n: int, into: Path) -> Path:
    for cls in ("cat", "dog"):
        (into / cls).mkdir(parents=True)
        for p in sorted((data / cls).iterdir())[: n // 2]:
            (into / cls / p.name).symlink_to(p)
    return into


def one_run(win, path: str, model: str, augment: bool, epochs: int, finetune: bool = False) -> dict:
    from catdog_gui.gui.common import training_process as tp

    t = win.training_tab
    t.select_model(model)
    t.form.transfer_check.setChecked(model != "lenet5")
    if finetune:
        t.form.transfer_mode.setCurrentIndex(t.form.transfer_mode.findData("finetune"))
    win.augment.set_enabled(augment)
    t.form.hyper["epochs"].setValue(epochs)
    t.form.hyper["patience"].setValue(0)
    real = tp.TrainingProcess
    if path == "in-process":
        tp.TrainingProcess = InProcessRun
    elif path == "child, warm":
        tp.ChildPool.prewarm()
        wait_until(lambda: tp.ChildPool._warm is not None, 120, "a warm child")
    else:
        tp.ChildPool.enabled = False
    first = []
    rss0 = rss_mb()
    lat = Lateness()
    clock = time.perf_counter()
    lat.start()
    try:
        assert t.start_training()
        run = t.run
        run.batches_added.connect(lambda _c: first or first.append(time.perf_counter() - clock))
        wait_until(lambda: run.finished_event is not None and not run.is_active(), 1800, "the run")
    finally:
        stats = lat.stop()
        tp.TrainingProcess = real
        tp.ChildPool.enabled = True
    fin = run.finished_event
    assert fin.status in ("completed", "stopped_early"), fin.reason
    QApplication.processEvents()
    speeds = [e.images_per_s for e in fin.history]
    return {"lat": stats, "first_batch_s": first[0] if first else float("nan"),
            "img_s": statistics.mean(speeds), "rss_delta": rss_mb() - rss0, "acc": fin.best_val_acc,
            "seconds": time.perf_counter() - clock}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data", nargs="?", default=DEFAULT_DATA)
    ap.add_argument("--photos", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--transfer", action="store_true", help="also the default pretrained model (frozen)")
    ap.add_argument("--finetune", action="store_true", help="also fine-tuning the default pretrained model")
    ap.add_argument("--no-lenet", action="store_true", help="leave out the LeNet-5 runs")
    args = ap.parse_args()

    from PySide6.QtCore import QStandardPaths

    tmp = Path(tempfile.mkdtemp(prefix="bench-child-"))
    os.environ["CATDOG_DATA_DIR"] = str(tmp / "appdata")
    QStandardPaths.setTestModeEnabled(True)
    app = QApplication.instance() or QApplication(sys.argv[:1])  # noqa: F841  (the windows need it)
    from catdog_gui.gui.main_window import MainWindow
    from catdog_gui.gui.settings import Settings

    data = subset(Path(args.data), args.photos, tmp / "photos")
    win = MainWindow(Settings(tmp / "settings.ini"), models_folder=str(tmp / "models"))
    win.resize(1280, 800)
    win.show()
    win.ensure_backend()
    wait_until(lambda: win.training_tab.backend_ready, 120, "the engine")
    win.data.set_folders(str(data))
    wait_until(lambda: win.data.dataset is not None, 120, "the scan")
    idle = Lateness()
    idle.start()
    t_end = time.perf_counter() + 3
    wait_until(lambda: time.perf_counter() > t_end, 10)
    idle_stats = idle.stop()

    cases = [] if args.no_lenet else [("LeNet-5 + augmentation", "lenet5", True, args.epochs, False)]
    if args.transfer:
        cases.append(("pretrained (frozen)", "efficientnet_lite1", False, 8, False))
    if args.finetune:
        cases.append(("fine-tuning", "efficientnet_lite1", False, 3, True))
    paths = ("in-process", "child, warm", "child, cold")
    rows = []
    for title, model, aug, epochs, ft in cases:
        one_run(win, "child, cold", model, aug, 1, ft)  # caches warm (decode, features) for every path alike
        for path in paths:
            res = [one_run(win, path, model, aug, epochs, ft) for _ in range(args.repeats)]
            rows.append((title, path, res))

    print(f"\n{args.photos} photos, {args.repeats} runs each, {os.cpu_count()} cores; idle window: p99 "
          f"{idle_stats['p99']:.1f} ms, max {idle_stats['max']:.1f} ms\n")
    print(f"| run | path | lateness p50 / p99 / max (ms) | click to first batch (s) | img/s | window RSS after - before (MB) |")
    print("|---|---|---|---|---|---|")
    ref = {}
    for title, path, res in rows:
        p50 = statistics.median(r["lat"]["p50"] for r in res)
        p99 = statistics.median(r["lat"]["p99"] for r in res)
        mx = max(r["lat"]["max"] for r in res)
        fb = statistics.median(r["first_batch_s"] for r in res)
        ips = statistics.median(r["img_s"] for r in res)
        rss = statistics.median(r["rss_delta"] for r in res)
        if path == "in-process":
            ref[title] = (p99, fb, ips)
            ratio = ""
        else:
            rp99, rfb, rips = ref[title]
            ratio = f" ({ips / rips:.2f}x)"
        print(f"| {title} | {path} | {p50:.1f} / {p99:.1f} / {mx:.1f} | {fb:.2f} | {ips:,.0f}{ratio} | {rss:+.0f} |")
    win.close()
    from catdog_gui.gui.common.training_process import ChildPool

    ChildPool.shutdown()


if __name__ == "__main__":
    main()
