"""File > Export: save the current model as ONNX or TorchScript.

:func:`export_model_dialog` asks for the format and the destination in one save dialog (the file
type filter picks the format), runs :func:`catdog_gui.core.inference.export.export_model` on a background
:class:`~.workers.Task` and reports success or failure in a message box.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from .common.workers import Task

#: (format, file dialog filter, suffix added when the name has none)
FORMATS = (
    ("onnx", "ONNX model (*.onnx)", ".onnx"),
    ("torchscript", "TorchScript model (*.pt *.ts)", ".torchscript.pt"),
)


def _default_name(model_path: str, fmt: str) -> str:
    from ..core.inference.export import default_export_path

    return str(default_export_path(model_path, fmt))


def choose_export(parent: Optional[QWidget], model_path: str, fmt: str = "onnx") -> Optional[tuple[str, str]]:
    """Ask for format and destination; ``(format, path)`` or None when cancelled."""
    filters = [f for _, f, _ in FORMATS]
    by_filter = {f: (name, suffix) for name, f, suffix in FORMATS}
    start_filter = next(f for name, f, _ in FORMATS if name == fmt)
    path, chosen = QFileDialog.getSaveFileName(
        parent, "Export the model", _default_name(model_path, fmt), ";;".join(filters), start_filter
    )
    if not path:
        return None
    from ..core.inference.export import format_for_path

    fmt, suffix = by_filter.get(chosen, (fmt, ".onnx" if fmt == "onnx" else ".torchscript.pt"))
    named = format_for_path(path)
    if named is None:  # no (known) suffix typed: add the chosen format's
        path += suffix
    else:  # a name ending in .onnx means ONNX whatever filter was left selected
        fmt = named
    return fmt, path


def start_export(
    parent: Optional[QWidget],
    model_path: str,
    fmt: str,
    out_path: str,
    on_finished: Optional[Callable[[bool, str], None]] = None,
) -> Task:
    """Export on a background Task; a message box says how it went. ``on_finished(ok, message)``
    is called after the message box (for callers and tests)."""
    from ..core.inference.export import export_model

    status = getattr(parent, "show_message", None)
    title = "ONNX" if fmt == "onnx" else "TorchScript"

    def work(state):
        return export_model(model_path, fmt, out_path, progress=lambda msg: state.emit(msg))

    task = Task(work, parent, name="export")

    def on_partial(msg) -> None:
        if status:
            status(f"Export: {msg}...", 0)

    def on_done(path) -> None:
        path = Path(path)
        text = (f"Exported {Path(model_path).name} to\n{path}\n\n{title}, {path.stat().st_size / 1e6:.1f} MB. "
                "The file outputs class probabilities; the class names, input size and normalisation are stored "
                "in its metadata (\"catdog.json\"). See docs/export.md for a 10-line example.")
        if status:
            status(f"Exported the model to {path}")
        QMessageBox.information(parent, "Model exported", text)
        if on_finished:
            on_finished(True, str(path))

    def on_failed(message: str) -> None:
        if status:
            status("Export failed")
        box = QMessageBox(QMessageBox.Icon.Warning, "Export failed", f"Could not export the model to {title}.",
                          QMessageBox.StandardButton.Ok, parent)
        box.setInformativeText(message)
        if task.traceback:
            box.setDetailedText(task.traceback)
        box.exec()
        if on_finished:
            on_finished(False, message)

    task.partial.connect(on_partial)
    task.done.connect(on_done)
    task.failed.connect(on_failed)
    if status:
        status(f"Exporting to {title}...", 0)
    return task.start()


def export_model_dialog(parent: Optional[QWidget], model_path: str) -> None:
    """File > Export: ask format + destination, export in the background, report in a message box."""
    if not model_path:
        QMessageBox.information(parent, "Export", "Open or train a model first.")
        return
    choice = choose_export(parent, model_path)
    if choice is None:
        return
    fmt, out = choice
    start_export(parent, model_path, fmt, out)
