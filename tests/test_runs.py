"""The run store: every run kept (CLI and API here; the window in tests/gui), damaged entries listed
and skipped, two runs compared setting by setting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from catdog_gui import api
from catdog_gui.cli import main as cli_main
from catdog_gui.core.errors import CatdogError
from catdog_gui.core.storage.run_store import VERSION, RunRecord, RunStore, compare, differing_settings


def _record(run_id="20260101-000000-lenet5-aaaa", **kw) -> RunRecord:
    base = dict(id=run_id, status="completed", config={"model": "lenet5", "epochs": 3, "lr": 0.001,
                                                        "augment": {"enabled": False, "rotation": 10.0}},
                dataset={"root": "/d", "classes": ["cat", "dog"], "val_fraction": 0.2, "split_seed": 0},
                history=[{"epoch": 1, "train_loss": 0.7, "train_acc": 0.5, "val_loss": 0.69, "val_acc": 0.55}],
                best_epoch=1, metrics={"validation": {"accuracy": 0.55, "per_class": {}}, "test": None})
    base.update(kw)
    return RunRecord(**base)



def test_compare_tells_a_split_drawn_the_earlier_way():
    split = {"root": "/d", "classes": ["cat", "dog"], "val_source": "split", "val_fraction": 0.2, "split_seed": 0}
    old, new = _record("old", dataset=split), _record("new", dataset={**split, "split_version": 2})
    assert differing_settings(old, new) == {"dataset.split_version": (1, 2)}
    assert differing_settings(old, _record("also-old", dataset=dict(split))) == {}

def test_store_round_trips_and_edits(tmp_path):
    store = RunStore(tmp_path / "runs")
    rec = _record(note="first")
    store.save(rec)
    assert store.get(rec.id) == rec
    assert store.get(rec.id[:20]) == rec  # a unique prefix is enough
    store.update(rec.id, name="baseline", note="LeNet-5 as in the paper", starred=True)
    again = RunStore(tmp_path / "runs").get(rec.id)
    assert (again.name, again.note, again.starred) == ("baseline", "LeNet-5 as in the paper", True)
    with pytest.raises(CatdogError, match="cannot change status"):
        store.update(rec.id, status="failed")
    assert not list((tmp_path / "runs").glob(".*"))  # atomic writes leave no temp files


def test_damaged_and_newer_entries_are_listed_and_never_stop_the_others(tmp_path):
    store = RunStore(tmp_path)
    good = _record()
    store.save(good)
    (tmp_path / "20270101-broken.json").write_text("{not json")
    (tmp_path / "20270102-newer.json").write_text(json.dumps({**good.to_dict(), "id": "n", "version": VERSION + 1}))
    (tmp_path / "20270103-other.json").write_text(json.dumps({"format": "something-else"}))
    (tmp_path / "20270104-noconfig.json").write_text(json.dumps({"format": "catdog-run", "version": 1, "id": "x",
                                                                  "status": "completed", "config": None}))
    assert [r.id for r in store.runs()] == [good.id]
    damaged = {d.id: d.reason for d in store.damaged()}
    assert set(damaged) == {"20270101-broken", "20270102-newer", "20270103-other", "20270104-noconfig"}
    assert "update catdog-gui" in damaged["20270102-newer"]
    assert "not a catdog-gui run file" in damaged["20270103-other"]


def test_compare_lists_exactly_the_settings_that_differ():
    a = _record("a")
    b = _record("b", config={"model": "lenet5", "epochs": 3, "lr": 0.01,
                             "augment": {"enabled": True, "rotation": 10.0}},
                dataset={"root": "/d", "classes": ["cat", "dog"], "val_fraction": 0.2, "split_seed": 1})
    assert differing_settings(a, b) == {"lr": (0.001, 0.01), "augment.enabled": (False, True),
                                        "dataset.split_seed": (0, 1)}
    assert differing_settings(a, a) == {}
    assert compare(a, b)["metrics"]["val_accuracy"] == [0.55, 0.55]


def test_delete_keeps_the_model_unless_asked_and_export_makes_a_folder(tmp_path):
    store = RunStore(tmp_path / "runs")
    model = tmp_path / "m.pt"
    model.write_bytes(b"model")
    rec = _record(model_path=str(model))
    store.save(rec)
    out = store.export(rec.id, tmp_path / "share")
    assert (out / "m.pt").read_bytes() == b"model"
    assert json.loads((out / "run.json").read_text())["model_path"] == "m.pt"
    with pytest.raises(CatdogError, match="already exists"):
        store.export(rec.id, tmp_path / "share")
    store.delete(rec.id)
    assert model.exists() and store.runs() == []
    store.save(rec)
    store.delete(rec.id, delete_model=True)
    assert not model.exists()
    with pytest.raises(CatdogError, match="no run"):
        store.get(rec.id)


def test_cli_and_api_runs_appear_in_catdog_runs_json(tiny_dataset, tmp_path, capsys):
    assert cli_main(["train", str(tiny_dataset), "--epochs", "1", "--quiet", "--out", str(tmp_path / "c.pt")]) == 0
    run = api.train(tiny_dataset, epochs=2, augment=True, progress=False, out=tmp_path / "a.pt")
    capsys.readouterr()
    assert cli_main(["runs", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    by_source = {r["source"]: r for r in listed}
    assert set(by_source) == {"cli", "api"}
    assert by_source["api"]["id"] == run.run_id
    assert Path(by_source["cli"]["model_path"]) == (tmp_path / "c.pt").resolve()
    assert len(by_source["api"]["history"]) == 2 and by_source["api"]["metrics"]["validation"]["accuracy"] == \
        pytest.approx(run.metrics.accuracy)
    assert by_source["cli"]["dataset"]["n_val"] == run.metrics.n
    # compare from the command line: exactly the settings that differ
    assert cli_main(["runs", "compare", by_source["cli"]["id"], run.run_id, "--json"]) == 0
    c = json.loads(capsys.readouterr().out)
    assert set(c["settings"]) == {"epochs", "augment.enabled"}
    assert cli_main(["runs", "show", "no-such-run"]) == 2
    assert "no run" in capsys.readouterr().err
