"""Small dialogs of the main window: File > Clear the caches… (what the disk caches hold, emptied
in the background) and Help > About (versions, compute device, where models go)."""

from __future__ import annotations

import platform

from PySide6.QtWidgets import QMessageBox

from .common.workers import Task


def clear_caches_dialog(window) -> None:
    """Say what the disk caches hold, and empty them (in the background) if the user agrees."""
    from ..core.storage.caches import cache_info, cache_root

    usage = [u for u in cache_info() if u.files]
    if not usage:
        window.show_message(f"The caches in {cache_root()} are empty")
        return
    lines = "<br>".join(f"{u.title}: {u.nbytes / 1e6:,.1f} MB" for u in usage)
    answer = QMessageBox.question(
        window, "Clear the caches?",
        f"{lines}<br><br>They only make the next run on the same photos start at once; your photos, "
        f"models and runs are not touched.<br>Folder: {cache_root()}")
    if answer != QMessageBox.StandardButton.Yes:
        return
    clear_caches(window)


def clear_caches(window) -> Task:
    from ..core.storage.caches import clear_caches as clear

    task = Task(lambda _state: clear(), window, name="clear caches")
    task.done.connect(lambda freed: window.show_message(f"Caches cleared: {freed / 1e6:,.1f} MB freed"))
    task.failed.connect(lambda msg: window.show_message(f"Could not clear the caches: {msg}"))
    window._set_busy("Clearing the caches…")
    task.finished.connect(lambda: window._set_busy(""))
    return task.start()


def about_text(window) -> str:
    import PySide6
    from PySide6.QtCore import qVersion

    from .. import __version__

    lines = [f"<b>catdog-gui {__version__}</b>",
             "Train an image classifier (cats vs dogs, or any classes from folders) without writing code.",
             "", f"Python {platform.python_version()} · Qt {qVersion()} · PySide6 {PySide6.__version__}"]
    if window.ready:  # through core: the GUI never imports torch itself
        import pyqtgraph

        from ..core.about import install_kind, torch_build, weights_source
        from ..core.storage.modelfile import library_versions

        v = library_versions()
        lines.append(f"{torch_build()} · torchvision {v['torchvision']} · pyqtgraph {pyqtgraph.__version__}")
        lines.append(f"Installed as a {install_kind()}")
        lines.extend(weights_source())
    lines.append(f"Compute device: {window.device or 'loading…'}")
    lines.append(f"Models are saved in {window.training_tab.models_folder or _default_models_dir()}")
    return "<br>".join(lines)


def _default_models_dir():
    from .models.training_run import models_dir

    return models_dir()
