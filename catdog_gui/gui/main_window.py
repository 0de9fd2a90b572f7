"""The main window: Dataset, Training, Prediction, Network and Runs tabs, menus, status bar, persistence.

The window owns the app's models and hands them to the views: :class:`CurrentModel` (the open model
file and its one Predictor) goes to the Prediction and Network tabs. A model file (``.pt``)
dropped anywhere on the window opens it, and the model opened last is opened again at the next
start.

First paint comes first: the window is built from Qt and the light core modules only (folder
scanning, augmentation settings). Torch (~3 s to import), the model registry, pyqtgraph and the
Prediction tab (whose module needs torch) are loaded by a background "warm-up" :class:`Task`
started once the window is on screen; :meth:`MainWindow.ensure_backend` does the same
synchronously for scripts and tests.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QMimeData, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from .models.current_model import CurrentModel
from .models.dataset_model import DatasetModel
from .dataset.tab import DatasetTab
from .models.runs_model import RunsModel
from .runs.tab import RunsView
from .menus import build_menus, refresh_recent
from .settings import Settings
from .training.tab import TrainingTab
from .models.augment_model import AugmentModel
from .common.widgets import muted
from .common.training_process import ChildPool
from .common.workers import Task

APP_TITLE = "catdog-gui"
MODEL_SUFFIX = ".pt"  # core.modelfile.SUFFIX (not imported: it pulls torch in before the first paint)


def _load_backend(state=None):
    """Import the heavy parts (on the warm-up thread): returns (model specs, device name)."""
    import pyqtgraph  # noqa: F401

    from ..core.device import device_name, pick_device
    from ..core.models import list_specs
    from ..core.training import trainer as training  # noqa: F401

    from .prediction import tab as prediction_tab  # noqa: F401  (it pulls torch in through core.modelfile: import it off the GUI thread)
    from .network import tab as network_tab  # noqa: F401  (torch too, through core.explain)
    try:
        dev = device_name(pick_device("auto"))
    except Exception:  # pragma: no cover - a broken CUDA install must not stop the app
        dev = "CPU"
    return list_specs(), dev


class MainWindow(QMainWindow):
    backend_ready = Signal()

    def __init__(self, settings: Optional[Settings] = None, models_folder: Optional[str] = None, parent=None):
        super().__init__(parent)
        self.settings = settings or Settings()
        self.augment = AugmentModel(self.settings.augment_settings(), parent=self)
        self.augment.changed.connect(lambda s: self.settings.set_augment_settings(s))
        self.device = ""
        self.current = CurrentModel(parent=self)
        self.runs = RunsModel(parent=self)  # the run store (every run, from here and the catdog command)
        self.data = DatasetModel(parent=self)  # the dataset the window trains on
        self.prediction_tab = None
        self.network_tab = None
        self._open_when_ready: Optional[str] = None  # a model asked for before the engine was loaded
        self._reopening: Optional[str] = None  # the last session's model, being opened again
        self._warmup: Optional[Task] = None
        self._ready = False
        self._closing = False

        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.dataset_tab = DatasetTab(self.data, self.augment, settings=self.settings)
        self.training_tab = TrainingTab(self.data, self.augment, self.current, self.runs, self.settings,
                                        models_folder=Path(models_folder) if models_folder else None)
        self.prediction_page = QWidget()
        self._prediction_layout = QVBoxLayout(self.prediction_page)
        self._prediction_layout.setContentsMargins(0, 0, 0, 0)
        self._prediction_placeholder = muted("Loading the prediction tools…")
        self._prediction_placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._prediction_layout.addWidget(self._prediction_placeholder)
        self.tabs.addTab(self.dataset_tab, "Dataset")
        self.tabs.addTab(self.training_tab, "Training")
        self.tabs.addTab(self.prediction_page, "Prediction")
        # Network: a teaching view of the current model (see network_tab's docstring for why a tab)
        self.network_page = QWidget()
        self._network_layout = QVBoxLayout(self.network_page)
        self._network_layout.setContentsMargins(0, 0, 0, 0)
        self._network_placeholder = muted("Loading…")
        self._network_placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._network_layout.addWidget(self._network_placeholder)
        self.tabs.addTab(self.network_page, "Network")
        # Runs last: Alt+1..3 follow the Dataset -> Training -> Prediction flow
        self.runs_view = RunsView(self.runs, self.current)
        self.tabs.addTab(self.runs_view, "Runs")
        for i, tip in enumerate(("Your photos: what is in the folders, and augmentation (Alt+1)",
                                 "Train a model and watch it learn (Alt+2)",
                                 "Classify new photos with a model (Alt+3)",
                                 "Look inside the model: its layers, LeNet-5's drawing, what each layer sees (Alt+4)",
                                 "Every training run kept: compare runs, open one or train it further (Alt+5)")):
            self.tabs.setTabToolTip(i, tip)
        self.setCentralWidget(self.tabs)
        self.setAcceptDrops(True)  # model files dropped anywhere (tabs that take other drops come first)

        self._build_menus()
        self._build_status_bar()
        self._connect()
        self._restore()
        self._report_settings_problems()
        self._update_title()

    # ------------------------------------------------------------------------------ building
    def _build_menus(self) -> None:
        build_menus(self)

    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        self.busy_label = QLabel("")
        self.busy_label.setAccessibleName("What is running")
        self.device_label = QLabel("Device: loading…")
        self.device_label.setAccessibleName("Compute device")
        self.device_label.setToolTip("Where training and prediction run")
        sb.addPermanentWidget(self.busy_label)
        sb.addPermanentWidget(self.device_label)
        sb.showMessage("Ready")

    def _connect(self) -> None:
        d, t = self.dataset_tab, self.training_tab
        d.status_message.connect(self.show_message)
        t.status_message.connect(self.show_message)
        d.busy.connect(self._set_busy)
        t.busy.connect(self._set_busy)
        self.data.changed.connect(self._on_dataset_changed)
        d.folder_opened.connect(self._on_folder_opened)
        d.train_requested.connect(lambda: self.tabs.setCurrentWidget(self.training_tab))
        t.image_size_changed.connect(d.set_preview_size)
        t.run_finished.connect(lambda fin: d.set_run_metrics(fin.metrics))  # the Review view lists its mistakes
        t.try_model_requested.connect(self._try_model)
        t.results.save_button.clicked.connect(self.save_model_as)
        t.running_changed.connect(lambda _r: self._update_actions())
        r = self.runs_view
        r.status_message.connect(self.show_message)
        r.open_requested.connect(self._try_model)
        r.continue_requested.connect(self._continue_from)
        t.compare_requested.connect(self._compare_runs)
        c = self.current
        c.loading.connect(self._on_model_loading)
        c.changed.connect(self._on_model_changed)
        c.failed.connect(self._on_model_failed)
        self._update_actions()

    # ------------------------------------------------------------------------------ backend
    def showEvent(self, e):  # noqa: N802
        super().showEvent(e)
        if self._warmup is None and not self._ready:
            QTimer.singleShot(0, self.start_warm_up)

    def start_warm_up(self) -> None:
        """Load torch, the models and pyqtgraph in the background (after the first paint)."""
        if self._warmup is not None or self._ready or self._closing:
            return
        self._set_busy("Loading the training engine…")
        task = Task(_load_backend, self, name="warm-up")
        task.done.connect(self._on_backend)
        task.failed.connect(lambda msg: self.show_message(f"Could not load the training engine: {msg}"))
        task.finished.connect(lambda: self._set_busy(""))
        self._warmup = task
        task.start()

    def ensure_backend(self) -> None:
        """Load the heavy parts now (blocking): for scripts and tests."""
        if self._ready:
            return
        if self._warmup is not None:
            self._warmup.discard()
            self._warmup.wait()
        self._on_backend(_load_backend())

    @property
    def ready(self) -> bool:
        return self._ready

    def _on_backend(self, result) -> None:
        if self._ready:
            return
        specs, device = result
        self._ready = True
        self.device = device
        self.device_label.setText(f"Device: {device}")
        self.training_tab.set_backend(specs, device)
        self.training_tab.ensure_plots()
        self.runs_view.ensure_plots()
        self._create_prediction_tab()
        self._create_network_tab()
        self._update_actions()
        ChildPool.prewarm()  # a training process ready before Train is clicked
        if self._open_when_ready:
            path, self._open_when_ready = self._open_when_ready, None
            self.current.open(path)
        elif self.current.path is None and not self.current.is_loading():
            self._reopen_last_model()
        self.backend_ready.emit()

    def _create_prediction_tab(self) -> None:
        from .prediction.tab import PredictionTab

        tab = PredictionTab(self.current)
        tab.settings = self.settings  # the Camera page remembers the camera and the mirror setting
        self.prediction_tab = tab
        self._prediction_placeholder.hide()
        self._prediction_layout.addWidget(tab)
        tab.status_message.connect(self.show_message)
        if self.data.dataset is not None:
            tab.set_dataset_root(str(self.data.dataset.report.root))

    def _create_network_tab(self) -> None:
        from .network.tab import NetworkTab

        tab = NetworkTab(self.current)
        self.network_tab = tab
        self._network_placeholder.hide()
        self._network_layout.addWidget(tab)
        tab.status_message.connect(self.show_message)
        self.prediction_tab.image_shown.connect(tab.set_image)

    # ------------------------------------------------------------------------------ actions
    def _report_settings_problems(self) -> None:
        """A settings file that could not be read (defaults used) or cannot be written (changes
        will be lost) is said once in the status bar, instead of failing silently."""
        s = self.settings
        if not s.q.isWritable():
            self.show_message(f"Settings cannot be saved to {s.path} (read-only or no permission): "
                              "changes will be lost when you quit", 20000)
        elif s.corrupt:
            self.show_message(f"The settings file {s.path} could not be read: starting from the defaults", 20000)

    def show_message(self, text: str, ms: int = 8000) -> None:
        self.statusBar().showMessage(text, ms)

    def _set_busy(self, text: str) -> None:
        if not text:  # one job ended: say what is still going
            if self.training_tab.is_running():
                text = "Training…"
            elif self.dataset_tab.is_scanning():
                text = "Scanning photos…"
        self.busy_label.setText(text)

    def open_dataset(self) -> None:
        start = self.settings.get_str("paths/last_dataset_parent", str(Path.home()))
        d = QFileDialog.getExistingDirectory(self, "Choose the folder with your photos", start)
        if d:
            self.open_dataset_path(d)

    def open_dataset_path(self, path: str, val_dir: Optional[str] = None) -> None:
        self.tabs.setCurrentWidget(self.dataset_tab)
        self.dataset_tab.set_folders(path, val_dir)

    def _on_folder_opened(self, path: str) -> None:
        self.settings.set("paths/last_dataset", path)
        self.settings.set("paths/last_dataset_parent", str(Path(path).parent))
        self.settings.add_recent("datasets", path)
        self._refresh_recent()
        self._update_title()

    def _on_dataset_changed(self, dataset) -> None:
        self._update_title()
        if dataset is not None and self.prediction_tab is not None:
            self.prediction_tab.set_dataset_root(str(dataset.report.root))

    def open_model(self) -> None:
        start = self.settings.get_str("paths/last_model_dir", str(self.training_tab.models_folder or Path.home()))
        path, _ = QFileDialog.getOpenFileName(self, "Open a model file", start, "Model files (*.pt);;All files (*)")
        if path:
            self.set_model(path)

    # ------------------------------------------------------------------------------ the current model
    @property
    def model_path(self) -> Optional[str]:
        """The current model file (kept by :attr:`current`), or None."""
        return self.current.path

    def set_model(self, path: str) -> None:
        """Open ``path`` as the current model (in the background): Prediction and Network tabs,
        Continue training, Save as, title. A file that cannot be opened leaves the current model."""
        path = str(path)
        if not self._ready:  # the engine (torch) is still loading on the warm-up thread
            self._open_when_ready = path
            self.show_message(f"Opening model {Path(path).name} as soon as the engine is loaded…")
            return
        self.current.open(path)

    def _reopen_last_model(self) -> None:
        """Open the model of the last session again (say so); a file that has moved is said, not fatal."""
        last = self.settings.get_str("paths/last_model", "")
        if not last:
            return
        if not Path(last).is_file():
            self.show_message(f"The model you used last time, {last}, is no longer there (moved or deleted?): "
                              "open it again with File > Open model…", 20000)
            return
        self._reopening = last
        self.current.open(last)

    def _on_model_loading(self, path: str) -> None:
        what = "the model you used last time, " if path == self._reopening else "model "
        self.show_message(f"Opening {what}{Path(path).name}…")

    def _on_model_changed(self, predictor) -> None:
        path = self.current.path
        reopened, self._reopening = path is not None and path == self._reopening, None
        if path:
            self.settings.set("paths/last_model", path)
            self.settings.set("paths/last_model_dir", str(Path(path).parent))
            self.settings.add_recent("models", path)
            self._refresh_recent()
            classes = ", ".join(self.current.classes)
            if reopened:
                self.show_message(f"Opened {Path(path).name} again, the model you used last time ({classes})", 15000)
            else:
                self.show_message(f"Using model {Path(path).name}: {classes}")
        self._update_title()
        self._update_actions()

    def _on_model_failed(self, path: str, message: str) -> None:
        what = "the model you used last time, " if path == self._reopening else ""
        self._reopening = None
        keep = f" Still using {self.current.file_name}." if self.current.path else ""
        self.show_message(f"Could not open {what}{Path(path).name}: {message}.{keep}".replace("..", "."), 15000)

    def _try_model(self, path: str) -> None:
        if path and self.current.path != path and self.current.pending != path:
            self.set_model(path)
        self.tabs.setCurrentWidget(self.prediction_page)

    def _continue_from(self, path: str) -> None:
        """A run's model becomes the current model; the Training tab's Continue training trains it further."""
        if path and self.current.path != path and self.current.pending != path:
            self.set_model(path)
        self.tabs.setCurrentWidget(self.training_tab)

    def _compare_runs(self, ids: list) -> None:
        self.tabs.setCurrentWidget(self.runs_view)
        self.runs_view.select_ids(ids)

    # drops: a model file anywhere on the window opens it (the Prediction tab takes its own drops,
    # the Dataset tab takes folders; everything else comes here)
    @staticmethod
    def _model_files(mime: QMimeData) -> list[str]:
        if not mime.hasUrls():
            return []
        return [u.toLocalFile() for u in mime.urls()
                if u.isLocalFile() and u.toLocalFile().lower().endswith(MODEL_SUFFIX)]

    def dragEnterEvent(self, e):  # noqa: N802
        if self._model_files(e.mimeData()):
            e.acceptProposedAction()
        else:
            e.ignore()

    def dragMoveEvent(self, e):  # noqa: N802
        if self._model_files(e.mimeData()):
            e.acceptProposedAction()

    def dropEvent(self, e):  # noqa: N802
        files = self._model_files(e.mimeData())
        if not files:
            e.ignore()
            return
        e.acceptProposedAction()
        if len(files) > 1:
            self.show_message(f"{len(files)} model files dropped: opening the first, {Path(files[0]).name}")
        self.set_model(files[0])

    def export_model(self) -> None:
        from .export_dialog import export_model_dialog

        if not self.model_path:
            self.show_message("No model yet: train one or open a model file first")
            return
        export_model_dialog(self, self.model_path)

    def save_model_as(self) -> None:
        src = self.model_path
        if not src:
            self.show_message("No model yet: train one or open a model file first")
            return
        start = str(Path(self.settings.get_str("paths/last_save_dir", str(Path.home()))) / Path(src).name)
        dest, _ = QFileDialog.getSaveFileName(self, "Save the model as", start, "Model files (*.pt)")
        if dest:
            self.save_model_to(dest)

    def save_model_to(self, dest: str) -> Optional[Path]:
        """Copy the current model to ``dest`` atomically (temp file + rename)."""
        from ..core.errors import CatdogError
        from ..core.storage.modelfile import atomic_write

        src = self.model_path
        if not src:
            return None
        dest_p = Path(dest)
        if dest_p.suffix.lower() != ".pt":
            dest_p = dest_p.with_name(dest_p.name + ".pt")
        try:
            if dest_p.exists() and dest_p.samefile(src):
                return dest_p
            with open(src, "rb") as f:
                out = atomic_write(dest_p, lambda g: shutil.copyfileobj(f, g))
        except (CatdogError, OSError) as e:
            QMessageBox.warning(self, "Could not save the model", str(e))
            return None
        self.settings.set("paths/last_save_dir", str(dest_p.parent))
        self.show_message(f"Saved the model as {out}")
        return out

    def clear_caches_dialog(self) -> None:
        from .dialogs import clear_caches_dialog

        clear_caches_dialog(self)

    def clear_caches(self) -> Task:
        from .dialogs import clear_caches

        return clear_caches(self)

    def show_about(self) -> None:
        QMessageBox.about(self, "About catdog-gui", self.about_text())

    def about_text(self) -> str:
        from .dialogs import about_text

        return about_text(self)

    # ------------------------------------------------------------------------------ recent items
    def _refresh_recent(self) -> None:
        refresh_recent(self)

    # ------------------------------------------------------------------------------ state
    def _update_title(self) -> None:
        parts = [APP_TITLE]
        ds = self.data.train_dir
        if ds:
            parts.append(f"dataset {Path(ds).name}")
        if self.model_path:
            parts.append(f"model {Path(self.model_path).name}")
        self.setWindowTitle(" — ".join(parts))

    def _update_actions(self) -> None:
        running = self.training_tab.is_running()
        self.save_model_action.setEnabled(bool(self.model_path) and not running)
        self.open_model_action.setEnabled(not running)
        self.clear_caches_action.setEnabled(not running)  # a run may be writing into them

    def _restore(self) -> None:
        s = self.settings
        geo = s.get_bytes("window/geometry")
        if geo is None or not self.restoreGeometry(geo):
            self.resize(1280, 800)
        state = s.get_bytes("window/state")
        if state is not None:
            self.restoreState(state)
        self.tabs.setCurrentIndex(s.get_int("window/tab", 0, 0, self.tabs.count() - 1))
        for key, splitter in self._splitters().items():
            v = s.get_bytes(f"splitters/{key}")
            if v is not None:
                splitter.restoreState(v)

    def _splitters(self) -> dict:
        return {"dataset": self.dataset_tab.splitter, "training": self.training_tab.main_split,
                "training_right": self.training_tab.right_split, "runs": self.runs_view.splitter}

    def save_state(self) -> None:
        s = self.settings
        s.set("window/geometry", self.saveGeometry())
        s.set("window/state", self.saveState())
        s.set("window/tab", self.tabs.currentIndex())
        for key, splitter in self._splitters().items():
            s.set(f"splitters/{key}", splitter.saveState())
        s.set_augment_settings(self.augment.settings)
        s.sync()

    def closeEvent(self, e):  # noqa: N802
        self._closing = True
        try:
            self.save_state()
        except Exception:  # never block closing on settings
            pass
        self.training_tab.shutdown()
        self.dataset_tab.shutdown()
        self.data.shutdown()
        if self.prediction_tab is not None:
            self.prediction_tab.shutdown()
        if self.network_tab is not None:
            self.network_tab.shutdown()
        self.runs_view.shutdown()
        self.current.shutdown()
        if self._warmup is not None:
            self._warmup.discard()
            self._warmup.wait()
        super().closeEvent(e)

