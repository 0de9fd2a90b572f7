"""File > Export (Ctrl+E): exports the current model in the background and says how it went."""

from __future__ import annotations

from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QMessageBox


def test_export_action_in_file_menu(window):
    actions = {a.text().replace("&", ""): a for a in window.file_menu.actions() if a.text()}
    assert actions["Export model…"].shortcut() == QKeySequence("Ctrl+E")


def test_export_runs_in_background_and_writes_file(window, qtbot, tiny_model, tmp_path, monkeypatch):
    from catdog_gui.gui.export_dialog import start_export

    shown = []
    monkeypatch.setattr(QMessageBox, "information", lambda *a, **k: shown.append(a[1:3]))
    results = []
    task = start_export(window, str(tiny_model), "torchscript", str(tmp_path / "m.ts"),
                        on_finished=lambda ok, msg: results.append((ok, msg)))
    qtbot.waitUntil(lambda: bool(results), timeout=60_000)
    task.wait()
    assert results == [(True, str(tmp_path / "m.ts"))] and (tmp_path / "m.ts").stat().st_size > 0
    assert shown and shown[0][0] == "Model exported"


def test_export_without_model_says_what_to_do(window, monkeypatch):
    messages = []
    monkeypatch.setattr(window, "show_message", lambda text, *a: messages.append(text))
    assert window.model_path is None  # a fresh window
    window.export_model()
    assert messages and "No model yet" in messages[0]


def test_int8_export_from_the_window_reports_float_against_int8(window, qtbot, tiny_model, tmp_path, monkeypatch):
    """The INT8 file type: the export runs the quantizer (the model's own training photos) and the message
    shows the measured accuracy, size and speed of both; choosing it keeps a .onnx name as INT8."""
    from PySide6.QtWidgets import QFileDialog

    from catdog_gui.core.inference.export import read_metadata
    from catdog_gui.gui.export_dialog import FORMATS, choose_export, start_export

    int8_filter = next(f for name, f, _ in FORMATS if name == "onnx-int8")
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(tmp_path / "q.onnx"), int8_filter))
    fmt, out = choose_export(window, str(tiny_model))
    assert (fmt, out) == ("onnx-int8", str(tmp_path / "q.onnx"))
    shown = []
    monkeypatch.setattr(QMessageBox, "information", lambda *a, **k: shown.append(a[1:3]))
    results = []
    task = start_export(window, str(tiny_model), fmt, out, on_finished=lambda ok, msg: results.append((ok, msg)))
    qtbot.waitUntil(lambda: bool(results), timeout=120_000)
    task.wait()
    assert results == [(True, out)] and "int8" in read_metadata(out)
    assert "validation accuracy" in shown[0][1] and "photos per second" in shown[0][1]
