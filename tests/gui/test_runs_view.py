"""The Runs tab: its table matches the run store (damaged files listed, greyed, never in the way),
sorting, one run's curves and metrics, two runs overlaid with the settings that differ, rename /
star / note persisting to the store, delete keeping the model file when asked, export, opening a
run's model (and a missing one said in the status bar), and evaluating a run on a test folder."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence

from catdog_gui.core.storage.run_store import RunRecord, RunStore
from catdog_gui.gui.models.runs_model import COL, ID_ROLE, RunsModel
from catdog_gui.gui.runs.tab import RunsView
from helpers import make_dataset


def _history(epochs: int, val: float, best: int) -> list[dict]:
    return [dict(epoch=e, epochs=epochs, train_loss=1.0 / e, train_acc=min(1.0, 0.5 + 0.1 * e),
                 val_loss=1.3 / e + 0.01 * e, val_acc=val * (0.7 + 0.3 * e / epochs), images_per_s=100.0,
                 seconds=1.0, eta_s=0.0, best_epoch=best, is_best=e == best, phase="train")
            for e in range(1, epochs + 1)]


def _metrics(val: float, n: int = 20) -> dict:
    pc = {"precision": val, "recall": val, "f1": val, "support": n // 2}
    return {"classes": ["cat", "dog"], "n": n, "accuracy": val, "per_class": {"cat": pc, "dog": pc},
            "confusion": [[n // 2, 0], [0, n // 2]]}


def _record(store: RunStore, run_id: str, name: str = "", val: float = 0.8, epochs: int = 3, lr: float = 1e-3,
            augment: bool = False, model_path=None, test=None, started="2026-01-02T03:04:05", **config) -> RunRecord:
    rec = RunRecord(
        id=run_id, status="completed", name=name, source="cli", started=started, duration_s=12.5,
        device="CPU", config={"model": "lenet5", "epochs": epochs, "lr": lr, "batch_size": 32,
                              "augment": {"enabled": augment, "rotation": 15.0}, **config},
        dataset={"root": "/data/x", "n_train": 80, "n_val": 20, "classes": ["cat", "dog"], "val_fraction": 0.2,
                 "split_seed": 0},
        history=_history(epochs, val, epochs - 1 if epochs > 1 else 1), best_epoch=epochs - 1 if epochs > 1 else 1,
        metrics={"validation": _metrics(val), "test": test}, model_path=str(model_path) if model_path else None)
    store.save(rec)
    return rec


@pytest.fixture
def store():
    return RunStore()


@pytest.fixture
def three(store):
    """Three runs (LeNet-5, augmented, a transfer run evaluated on a test folder) and two damaged files."""
    a = _record(store, "20260101-100000-lenet5-aaaa", val=0.71, epochs=3)
    b = _record(store, "20260102-100000-lenet5-bbbb", name="with augmentation", val=0.78, epochs=4, augment=True)
    c = _record(store, "20260103-100000-mobilenet-cccc", val=0.93, epochs=2, model="mobilenet_v3_small",
                pretrained=True, test=dict(_metrics(0.9, 40), folder="/data/test"))
    (store.folder / "20260104-100000-broken-dddd.json").write_text("{not json", encoding="utf-8")
    (store.folder / "20260105-100000-future-eeee.json").write_text(
        json.dumps({"format": "catdog-run", "version": 99, "id": "x"}), encoding="utf-8")
    return a, b, c


@pytest.fixture
def view(qtbot, store):
    def make(current=None):
        v = RunsView(RunsModel(store), current)
        qtbot.addWidget(v)
        v.resize(1200, 800)
        v.show()  # the table takes the runs when first shown
        return v

    return make


def _rows(v: RunsView) -> list[dict]:
    p = v.proxy
    return [{key: p.index(r, COL[key]).data() for key in COL} | {"id": p.index(r, 0).data(ID_ROLE),
                                                                  "tip": p.index(r, 0).data(Qt.ItemDataRole.ToolTipRole),
                                                                  "flags": p.flags(p.index(r, 0))}
            for r in range(p.rowCount())]


def test_table_matches_the_store_damaged_entries_listed(view, store, three):
    v = view()
    rows = _rows(v)
    # every entry of the store: the runs newest first, then the damaged files
    assert [r["id"] for r in rows] == [e.id for e in store.runs()] + [e.id for e in store.damaged()]
    by_id = {r["id"]: r for r in rows}
    for rec in store.runs():
        row = by_id[rec.id]
        assert row["name"] == rec.title and row["model"] == rec.config["model"]
        assert row["val"] == f"{rec.val_accuracy * 100:.1f}%"
        assert row["test"] == (f"{rec.test_accuracy * 100:.1f}%" if rec.test_accuracy is not None else "—")
        assert row["epochs"] == str(rec.epochs) and row["date"] == "2026-01-02 03:04"
        assert row["flags"] & Qt.ItemFlag.ItemIsSelectable
    a, b, c = three
    assert by_id[b.id]["augment"] == "on" and by_id[a.id]["augment"] == "off"
    assert by_id[c.id]["transfer"] == "pretrained" and by_id[a.id]["transfer"] == "from scratch"
    damaged = store.damaged()
    assert len(damaged) == 2
    for d in damaged:
        row = by_id[d.id]
        assert row["name"].startswith("Damaged run file") and d.reason in row["tip"]
        assert not row["flags"] & Qt.ItemFlag.ItemIsSelectable  # greyed, nothing to do with it
    # damaged files never stop a selection of the good ones
    v.select_ids([a.id, b.id])
    assert v.selected_ids() == [b.id, a.id]


def test_sorting_by_accuracy_sorts_numbers(view, store, three):
    _record(store, "20260106-100000-lenet5-ffff", val=0.095)  # "9.5%" sorts after "78.0%" as text
    v = view()
    v.table.sortByColumn(COL["val"], Qt.SortOrder.DescendingOrder)
    ids = [r["id"] for r in _rows(v) if not r["name"].startswith("Damaged")]
    assert ids == [r.id for r in sorted(store.runs(), key=lambda r: -r.val_accuracy)]


def test_runs_are_ordered_by_their_start(view, store):
    """Two short runs recorded in the same second: their ids say nothing of their order, the start does."""
    old = _record(store, "20260101-100000-lenet5-ffff", started="2026-01-01T09:59:50")
    new = _record(store, "20260101-100000-lenet5-0000", started="2026-01-01T09:59:58")
    v = view()
    assert [r["id"] for r in _rows(v)] == [new.id, old.id]  # newest first
    assert v.runs.previous_of(new.id) == old.id and v.runs.previous_of(old.id) is None


def test_one_run_shows_its_curves_and_metrics(view, three):
    a, _b, _c = three
    v = view()
    v.ensure_plots()
    v.select_ids([a.id])
    d = v.plots.data_of(a.id)
    assert d["val_acc"] == ([e["epoch"] for e in a.history], [e["val_acc"] * 100 for e in a.history])
    assert d["train_loss"][1] == [e["train_loss"] for e in a.history]
    assert d["best_acc"][0] == [a.best_epoch]  # the best epoch is marked
    assert v.plots.legend_labels() == [f"{a.title}: validation", "training", f"best epoch ({a.best_epoch}, kept)"]
    rows = {v.details.verticalHeaderItem(i).text(): v.details.item(i, 0).text() for i in range(v.details.rowCount())}
    assert rows["Validation accuracy"] == "71.0% on 20 photos" and rows["Test folder accuracy"] == "not evaluated"
    assert rows["lr"] == "0.001"  # the settings as they were


def test_two_runs_overlaid_with_the_settings_that_differ(view, three):
    a, b, c = three
    v = view()
    v.ensure_plots()
    v.select_ids([a.id, b.id])
    assert set(v.plots.shown) == {a.id, b.id}
    for rec in (a, b):  # both runs' data, each in its own curves
        d = v.plots.data_of(rec.id)
        assert d["val_acc"][1] == [e["val_acc"] * 100 for e in rec.history]
        assert d["val_loss"][1] == [e["val_loss"] for e in rec.history]
        assert d["train_acc"][0] == list(range(1, rec.epochs + 1))
    pens = {v.plots.sets[i]["val_acc"].opts["pen"].color().name() for i in range(2)}
    assert len(pens) == 2  # one colour per run
    assert v.plots.legend_labels() == [b.title, a.title]  # the legend by run name
    t = v.details
    assert [t.horizontalHeaderItem(j).text() for j in range(t.columnCount())] == [b.title, a.title]
    rows = {t.verticalHeaderItem(i).text(): [t.item(i, j).text() for j in range(2)] for i in range(t.rowCount())}
    assert rows["augment.enabled"] == ["True", "False"] and rows["epochs"] == ["4", "3"]
    assert "lr" not in rows and "batch_size" not in rows  # the same in both: not a difference
    # three runs: what differs anywhere, each run's own value
    v.select_ids([a.id, b.id, c.id])
    rows = {t.verticalHeaderItem(i).text(): [t.item(i, j).text() for j in range(3)] for i in range(t.rowCount())}
    assert rows["model"] == ["mobilenet_v3_small", "lenet5", "lenet5"]
    assert rows["Test folder accuracy"][0] == "90.0% on 40 photos in /data/test"
    # fewer runs again: the spare curves are emptied, not left behind
    v.select_ids([c.id])
    assert all(len(v.plots.sets[i]["val_acc"].getData()[0] or []) == 0 for i in (1, 2))


def test_rename_star_and_note_persist(qtbot, view, store, three, monkeypatch):
    from PySide6.QtWidgets import QInputDialog

    a, _b, _c = three
    v = view()
    v.ensure_plots()
    v.select_ids([a.id])
    ix = v.proxy.mapFromSource(v.runs.index(v.runs.row_of(a.id), COL["name"]))
    assert v.proxy.setData(ix, "  my first LeNet  ", Qt.ItemDataRole.EditRole)  # the inline editor's path
    assert store.get(a.id).name == "my first LeNet"
    v.star_action.trigger()
    assert store.get(a.id).starred and v.proxy.data(ix).startswith("★ my first LeNet")
    assert v.star_action.text() == "Unstar"
    v.star_action.trigger()
    assert not store.get(a.id).starred
    monkeypatch.setattr(QInputDialog, "getMultiLineText", lambda *a, **k: ("worth keeping", True))
    v.note_action.trigger()
    assert store.get(a.id).note == "worth keeping"
    assert v.selected_ids() == [a.id]  # the selection survives the changes
    v.refresh_action.trigger()  # and a reload of the store (a run finished, Refresh)
    assert v.selected_ids() == [a.id] and v.plots.shown == [a.id]
    assert v.buttons["Rename"].accessibleName() == "Rename" and "F2" in v.rename_action.toolTip()


def _answer_delete(monkeypatch, which: str):
    from PySide6.QtWidgets import QMessageBox

    def fake_exec(box):
        getattr(box, f"{which}_button").click()
        return 0

    monkeypatch.setattr(QMessageBox, "exec", fake_exec)


def test_delete_keeps_the_model_file_when_asked(view, store, tmp_path, monkeypatch):
    model = tmp_path / "kept.pt"
    model.write_bytes(b"model")
    rec = _record(store, "20260101-100000-lenet5-aaaa", model_path=model)
    other = _record(store, "20260102-100000-lenet5-bbbb")
    v = view()
    v.ensure_plots()
    v.select_ids([rec.id])
    _answer_delete(monkeypatch, "cancel")
    v.delete_action.trigger()
    assert [r.id for r in store.runs()] == [other.id, rec.id]  # cancelled: nothing happened
    _answer_delete(monkeypatch, "keep")
    v.delete_action.trigger()
    assert [r.id for r in store.runs()] == [other.id] and model.read_bytes() == b"model"
    assert [r["id"] for r in _rows(v)] == [other.id]
    assert v.plots.shown == [] and v.details.columnCount() == 0  # the deleted run is no longer shown


def _trash_one_run(view, store, model, monkeypatch) -> list[str]:
    """Delete the one run of ``model`` answering "Move to the trash"; what the view said."""
    rec = _record(store, "20260101-100000-lenet5-aaaa", model_path=model)
    v = view()
    v.select_ids([rec.id])
    _answer_delete(monkeypatch, "trash")
    said = []
    v.status_message.connect(said.append)
    v.delete_action.trigger()
    return said


def test_delete_moves_the_model_file_to_the_trash(view, store, tmp_path, monkeypatch, request):
    """The real QFile.moveToTrash, into a freedesktop trash under a temporary XDG_DATA_HOME (Qt's
    test mode, which the GUI tests turn on, has no trash: it is off for this test only)."""
    from PySide6.QtCore import QStandardPaths

    (tmp_path / "share").mkdir()  # Qt trashes into an existing XDG_DATA_HOME only
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    monkeypatch.setenv("HOME", str(tmp_path))
    QStandardPaths.setTestModeEnabled(False)
    request.addfinalizer(lambda: QStandardPaths.setTestModeEnabled(True))
    model = tmp_path / "gone.pt"
    model.write_bytes(b"model")
    said = _trash_one_run(view, store, model, monkeypatch)
    assert not model.exists() and store.runs() == [], said
    trashed = list((tmp_path / "share" / "Trash" / "files").iterdir())
    assert [p.read_bytes() for p in trashed] == [b"model"]
    assert "moved to the trash" in said[-1]


def test_a_model_file_that_cannot_go_to_the_trash_keeps_its_run(view, store, tmp_path, monkeypatch):
    from PySide6.QtCore import QFile

    model = tmp_path / "stays.pt"
    model.write_bytes(b"model")
    real = QFile.moveToTrash
    monkeypatch.setattr(QFile, "moveToTrash", lambda path: real(str(tmp_path / "no-such-file")))  # fails, as Qt does
    said = _trash_one_run(view, store, model, monkeypatch)
    assert model.read_bytes() == b"model" and [r.id for r in store.runs()] == ["20260101-100000-lenet5-aaaa"]
    assert "Could not move the model file" in said[-1]


def test_export_writes_a_folder(view, store, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    model = tmp_path / "m.pt"
    model.write_bytes(b"model")
    rec = _record(store, "20260101-100000-lenet5-aaaa", model_path=model)
    v = view()
    messages = []
    v.status_message.connect(messages.append)
    v.select_ids([rec.id])
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(tmp_path / "out"))
    v.export_action.trigger()
    out = tmp_path / "out" / rec.id
    assert (out / "run.json").is_file() and (out / "m.pt").read_bytes() == b"model"
    assert messages[-1] == f"Exported to {out}"


def test_open_and_continue_from_a_run_in_the_window(qtbot, window, store, tiny_model, tmp_path):
    gone = _record(store, "20260101-100000-lenet5-aaaa", model_path=tmp_path / "deleted.pt")
    rec = _record(store, "20260102-100000-lenet5-bbbb", model_path=tiny_model)
    win, v = window, window.runs_view
    assert win.tabs.tabText(4) == "Runs" and "Alt+5" in win.tabs.tabToolTip(4)
    assert any(a.shortcut() == QKeySequence("Alt+5") for a in win.actions())
    v.refresh()
    win.tabs.setCurrentWidget(v)
    v.select_ids([gone.id])
    v.open_action.trigger()  # a model file that has gone: said, nothing else changes
    assert "is no longer there" in win.statusBar().currentMessage()
    assert win.tabs.currentWidget() is v and win.current.path is None and not win.current.is_loading()
    v.select_ids([rec.id])
    v.open_action.trigger()
    qtbot.waitUntil(lambda: win.current.path == str(tiny_model), timeout=30000)
    assert win.tabs.currentWidget() is win.prediction_page
    v.continue_action.trigger()
    assert win.tabs.currentWidget() is win.training_tab and win.current.path == str(tiny_model)


def test_evaluate_a_run_on_a_test_folder(qtbot, view, store, tiny_model, tmp_path):
    rec = _record(store, "20260101-100000-lenet5-aaaa", model_path=tiny_model)
    folder = make_dataset(tmp_path / "test", 6, seed=3)
    v = view()
    v.select_ids([rec.id])
    with qtbot.waitSignal(v.evaluation.finished, timeout=60000):
        with qtbot.waitSignal(v.evaluation.done, timeout=60000) as done:
            assert v.evaluate(rec.id, str(folder))
            assert v.eval_bar.isVisibleTo(v) and not v.evaluate_action.isEnabled()
    test = store.get(rec.id).metrics["test"]
    assert test["n"] == 12 and test["folder"] == str(folder) and 0 <= test["accuracy"] <= 1
    assert done.args[1]["accuracy"] == test["accuracy"]
    row = next(r for r in _rows(v) if r["id"] == rec.id)
    assert row["test"] == f"{test['accuracy'] * 100:.1f}%"  # the test column
    rows = {v.details.verticalHeaderItem(i).text(): v.details.item(i, 0).text() for i in range(v.details.rowCount())}
    assert rows["Test folder accuracy"].endswith(f"on 12 photos in {folder}")
    assert not v.eval_bar.isVisibleTo(v) and v.evaluate_action.isEnabled()


def test_evaluation_refuses_other_classes_and_can_be_cancelled(qtbot, view, store, tiny_model, tmp_path):
    rec = _record(store, "20260101-100000-lenet5-aaaa", model_path=tiny_model)
    v = view()
    messages = []
    v.status_message.connect(messages.append)
    horses = make_dataset(tmp_path / "horses", 3, classes=("cat", "horse"))
    with qtbot.waitSignal(v.evaluation.failed, timeout=60000) as failed:
        v.evaluate(rec.id, str(horses))
    assert "classes the model does not know: horse" in failed.args[0]
    assert messages[-1].startswith("Not evaluated: ") and "horse" in messages[-1]
    qtbot.waitUntil(lambda: not v.evaluation.is_running(), timeout=10000)
    folder = make_dataset(tmp_path / "test", 6, seed=3)
    with qtbot.waitSignal(v.evaluation.cancelled, timeout=60000):
        v.evaluate(rec.id, str(folder))
        v.eval_bar.cancel_button.click()
    assert store.get(rec.id).metrics["test"] is None  # nothing half-scored is kept
    # a model file that has gone: one sentence, no task
    gone = _record(store, "20260102-100000-lenet5-bbbb", model_path=tmp_path / "gone.pt")
    v.refresh()
    qtbot.waitUntil(lambda: not v.evaluation.is_running(), timeout=10000)
    with qtbot.waitSignal(v.evaluation.failed, timeout=1000) as failed:
        assert not v.evaluate(gone.id, str(folder))
    assert "no longer there" in failed.args[0]


def test_a_test_folder_holding_training_photos_is_refused_then_scored_anyway(qtbot, view, store, tiny_model):
    """The folder the model trained on: refused with the count (no score kept, the bar says so and offers
    "Score anyway"); "Score anyway" scores it with the overlap in the result; "Dismiss" hides the bar."""
    from catdog_gui.core.storage.modelfile import read_model_file

    rec = _record(store, "20260101-100000-lenet5-aaaa", model_path=tiny_model)
    trained = set(read_model_file(tiny_model)[0].metrics["train_hashes"])
    data = tiny_model.parent / "data"  # the folder it trained on (tests/conftest.py)
    v = view()
    failures = []
    v.evaluation.failed.connect(failures.append)
    with qtbot.waitSignal(v.evaluation.overlap_found, timeout=60000) as found:
        assert v.evaluate(rec.id, str(data))
    qtbot.waitUntil(lambda: not v.evaluation.is_running(), timeout=10000)
    assert f"{len(trained)} of the 40 photos" in found.args[0] and not failures
    assert store.get(rec.id).metrics["test"] is None
    bar = v.eval_bar
    assert bar.isVisibleTo(v) and bar.anyway_button.isVisibleTo(v) and "trained on" in bar.label.text()
    with qtbot.waitSignal(v.evaluation.finished, timeout=60000):
        with qtbot.waitSignal(v.evaluation.done, timeout=60000) as done:
            bar.anyway_button.click()
    assert done.args[1]["overlap"] == len(trained) and done.args[1]["n"] == 40
    assert store.get(rec.id).metrics["test"]["overlap"] == len(trained)
    assert not bar.isVisibleTo(v) and not failures
    with qtbot.waitSignal(v.evaluation.overlap_found, timeout=60000):
        v.evaluate(rec.id, str(data))
    qtbot.waitUntil(lambda: not v.evaluation.is_running(), timeout=10000)
    bar.cancel_button.click()  # "Dismiss"
    assert not bar.isVisibleTo(v)


def test_a_test_score_says_whether_the_model_trained_on_those_photos():
    from catdog_gui.gui.models.runs_model import test_text

    base = {"accuracy": 0.9, "n": 40, "folder": "/t"}
    assert "the model never saw" in test_text({**base, "overlap": 0})
    said = test_text({**base, "overlap": 12})
    assert "12 the model trained on" in said and "reads high" in said and "never saw" not in said
    assert "never saw" not in test_text(base) and "cannot tell" in test_text(base)
