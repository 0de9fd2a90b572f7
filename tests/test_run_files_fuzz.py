"""Run files the disk or a person damaged (hypothesis): every mutation of a real run file either loads as a
run whose every view works (``catdog runs``, ``runs show``, ``runs compare``, the Runs tab's details) or is
listed as damaged with one line; never a traceback, never another run hidden."""

from __future__ import annotations

import json

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from catdog_gui.core.storage.run_store import (  # noqa: E402
    FORMAT,
    VERSION,
    DamagedRun,
    RunRecord,
    RunStore,
    compare_lines,
    list_lines,
)

GOOD = {
    "format": FORMAT, "version": VERSION, "id": "20261201-101500-lenet5-3f2a", "status": "completed",
    "config": {"model": "lenet5", "epochs": 2, "augment": {"enabled": True, "rotation": 10}},
    "name": "", "note": "a note", "starred": False, "source": "cli", "reason": "trained 2 epochs",
    "started": "2026-12-01T10:15:00", "duration_s": 12.5, "device": "CPU (2 threads)", "mode": "scratch",
    "dataset": {"root": "/d", "classes": ["cat", "dog"], "n_train": 8, "n_val": 2, "val_source": "split"},
    "history": [{"epoch": 1, "epochs": 2, "train_loss": 0.7, "train_acc": 0.5, "val_loss": 0.69, "val_acc": 0.5},
                {"epoch": 2, "epochs": 2, "train_loss": 0.6, "train_acc": 0.6, "val_loss": 0.65, "val_acc": 0.6}],
    "best_epoch": 2,
    "metrics": {"validation": {"accuracy": 0.6, "per_class": {}, "confusion": [[1, 0], [1, 0]]}, "test": None},
    "model_path": "/models/m.pt",
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6)
PATHS = [(k,) for k in GOOD if k not in ("format", "version")] + [
    ("history", 0), ("history", 1, "val_acc"), ("history", 0, "epoch"), ("metrics", "validation"),
    ("metrics", "validation", "accuracy"), ("metrics", "test"), ("dataset", "classes"), ("dataset", "n_train"),
    ("config", "augment"), ("config", "model")]
CASES = {"n": 0}


def _mutate(d: dict, path: tuple, value) -> dict:
    d = json.loads(json.dumps(d))
    node = d
    for key in path[:-1]:
        node = node[key]
    if value == "<delete>":
        node.pop(path[-1]) if isinstance(node, dict) else node.pop(path[-1])
    else:
        node[path[-1]] = value
    return d


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(PATHS), value=json_values | st.just("<delete>"))
def test_a_damaged_run_file_is_listed_or_shown_never_a_traceback(tmp_path, path, value):
    from catdog_gui.gui.models.runs_model import details_rows

    CASES["n"] += 1
    store = RunStore(tmp_path / f"runs{CASES['n']}")
    good = RunRecord.from_dict(GOOD)
    store.save(good)
    bad = _mutate(GOOD, path, value)
    bad["id"] = "20261202-101500-lenet5-beef" if isinstance(bad.get("id"), str) or "id" not in bad else bad["id"]
    (store.folder / "20261202-101500-lenet5-beef.json").write_text(json.dumps(bad, allow_nan=True))
    entries = store.entries()
    assert len(entries) == 2 and any(isinstance(e, RunRecord) and e.id == good.id for e in entries)
    table = list_lines(entries)
    assert len(table) == 3  # the header, the good run, the other one (as a run or as damaged)
    for e in entries:
        if isinstance(e, DamagedRun):
            assert "damaged" in e.reason or "not a catdog-gui run file" in e.reason
            assert "\n" not in e.reason
        else:
            e.lines()
            compare_lines(good, e)
            details_rows([good, e])


def test_the_damaged_cases_seen_by_users_are_listed(tmp_path):
    """`"duration_s": null` and a history entry missing its numbers: listed as damaged, saying which field;
    a harmless edit (another note) still loads."""
    store = RunStore(tmp_path / "runs")
    (store.folder).mkdir()
    (store.folder / "a.json").write_text(json.dumps(_mutate(GOOD, ("note",), "edited by hand")))
    (store.folder / "b.json").write_text(json.dumps(_mutate(GOOD, ("duration_s",), None)))
    ok, damaged = store.entries()[1], store.entries()[0]
    assert isinstance(ok, RunRecord) and ok.note == "edited by hand"
    assert isinstance(damaged, DamagedRun) and "duration_s is empty (null), not a number" in damaged.reason
    for path, value, words in [(("duration_s",), None, "duration_s is empty (null), not a number"),
                               (("history", 0), {"epoch": 1}, "epoch 1 of its history lacks a number")]:
        with pytest.raises(Exception) as e:
            RunRecord.from_dict(_mutate(GOOD, path, value))
        assert words in str(e.value)
