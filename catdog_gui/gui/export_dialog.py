"""File > Export: save the current model as ONNX (float, or INT8) or TorchScript.

:func:`export_model_dialog` asks for the format and the destination in one save dialog (the file
type filter picks the format), runs :func:`catdog_gui.core.inference.export.export_model` (or, for INT8,
:func:`catdog_gui.core.inference.quantize.export_int8`) on a background :class:`~.workers.Task` and
reports success (for INT8 with its accuracy, size and speed against the float model) or failure in a
message box.
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
    ("onnx-int8", "ONNX model, INT8: smaller, faster on CPU (*.onnx)", ".int8.onnx"),
)


def _default_name(model_path: str, fmt: str) -> str:
    from ..core.inference.export import default_export_path

    if fmt == "onnx-int8":
        return str(default_export_path(model_path, "onnx").with_suffix(".int8.onnx"))
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
    elif not (named == "onnx" and fmt == "onnx-int8"):  # a name ending in .onnx means ONNX (float or INT8)
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
    title = {"onnx": "ONNX", "onnx-int8": "ONNX (INT8)"}.get(fmt, "TorchScript")

    def work(state):
        if fmt == "onnx-int8":
            from ..core.inference.quantize import export_int8

            return export_int8(model_path, out_path, progress=lambda msg: state.emit(msg))
        return export_model(model_path, fmt, out_path, progress=lambda msg: state.emit(msg))

    task = Task(work, parent, name="export")

    def on_partial(msg) -> None:
        if status:
            status(f"Export: {msg}...", 0)

    def on_done(result) -> None:
        report = None if isinstance(result, (str, Path)) else result
        path = Path(report.path if report is not None else result)
        measured = ("\n\n" + "\n".join(report.lines()[1:])) if report is not None else ""
        text = (f"Exported {Path(model_path).name} to\n{path}\n\n{title}, {path.stat().st_size / 1e6:.1f} MB. "
                "The file outputs class probabilities; the class names, input size and normalisation are stored "
                "in its metadata (\"catdog.json\"). See docs/export.md for a 10-line example." + measured)
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
