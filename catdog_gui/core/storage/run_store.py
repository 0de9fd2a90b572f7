"""The run store: every training run kept, from the window, the ``catdog`` command and the API alike.

One JSON file per run, ``<app data>/runs/<id>.json`` (the app data folder is :func:`app_data_dir`:
``$CATDOG_DATA_DIR``, else the platform's), written atomically. The format, version 1::

    {"format": "catdog-run", "version": 1, "id": "20261201-101500-lenet5-3f2a",
     "name": "LeNet-5, augmented", "note": "", "starred": false, "source": "gui" | "cli" | "api",
     "status": "completed" | "stopped_early" | "cancelled" | "failed", "reason": "...",
     "started": "2026-12-01T10:15:00", "duration_s": 69.2, "device": "CPU (2 threads)", "mode": "scratch",
     "config": {... TrainConfig.to_dict() ...},
     "dataset": {"root": ..., "val_root": ..., "classes": [...], "n_train": ..., "n_val": ...,
                 "val_source": "split" | "folder", "val_fraction": 0.2, "split_seed": 0},
     "history": [{... one EpochEnd as a dict ...}, ...], "best_epoch": 6,
     "metrics": {"validation": {... Metrics.to_dict() ...} | null, "test": {...} | null},
     "model_path": "/.../20261201-101500-lenet5.pt" | null}

A file that cannot be read, or of an unknown format or a newer version, is listed as a
:class:`DamagedRun` with the reason and never stops the others from loading. No torch, no Qt.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import secrets
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

from ..errors import CatdogError
from .files import atomic_write

FORMAT = "catdog-run"
VERSION = 1
PathLike = Union[str, os.PathLike]


def app_data_dir() -> Path:
    """Where the app keeps what it makes (models, runs): ``$CATDOG_DATA_DIR``, else the platform's
    application data folder (the same place Qt's AppDataLocation names for the window)."""
    env = os.environ.get("CATDOG_DATA_DIR")
    if env:
        return Path(env).expanduser()
    home = Path.home()
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA") or home / "AppData" / "Roaming")
    elif sys.platform == "darwin":
        base = home / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share")
    return base / "catdog-gui" / "catdog-gui"


@dataclass
class RunRecord:
    """One run as the store keeps it (see the module docstring for the file format)."""

    id: str
    status: str
    config: dict
    name: str = ""
    note: str = ""
    starred: bool = False
    source: str = "api"
    reason: str = ""
    started: str = ""
    duration_s: float = 0.0
    device: str = ""
    mode: str = ""
    dataset: dict = field(default_factory=dict)
    history: list = field(default_factory=list)
    best_epoch: int = 0
    metrics: dict = field(default_factory=lambda: {"validation": None, "test": None})
    model_path: Optional[str] = None

    # -- what the lists show ----------------------------------------------------------------
    @property
    def title(self) -> str:
        return self.name or self.default_name()

    def default_name(self) -> str:
        """``lenet5, augmented`` / ``efficientnet_lite0, pretrained, fine-tuned``."""
        c = self.config
        parts = [str(c.get("model", "model"))]
        if c.get("pretrained"):
            parts.append("pretrained" + (", fine-tuned" if c.get("transfer_mode") == "finetune" else ""))
        if (c.get("augment") or {}).get("enabled"):
            parts.append("augmented")
        return ", ".join(parts)

    @property
    def val_accuracy(self) -> Optional[float]:
        m = (self.metrics or {}).get("validation")
        return None if not m else m.get("accuracy")

    @property
    def test_accuracy(self) -> Optional[float]:
        m = (self.metrics or {}).get("test")
        return None if not m else m.get("accuracy")

    @property
    def augmented(self) -> bool:
        return bool((self.config.get("augment") or {}).get("enabled"))

    @property
    def transfer(self) -> bool:
        return bool(self.config.get("pretrained"))

    @property
    def epochs(self) -> int:
        return len(self.history)

    def to_dict(self) -> dict:
        return {"format": FORMAT, "version": VERSION, **asdict(self)}

    def lines(self) -> list[str]:
        """The run in words (``catdog runs show``): status, data, metrics, settings, per-epoch history."""
        d = self.dataset
        out = [f"{self.id}: {self.title}{' (starred)' if self.starred else ''}",
               f"  {self.status.replace('_', ' ')}: {self.reason}; {self.epochs} epochs, best {self.best_epoch}, "
               f"{self.duration_s:.0f} s on {self.device or '?'} (from the {self.source}), {self.started}"]
        if self.note:
            out.append(f"  note: {self.note}")
        out.append(f"  data: {d.get('root')} ({d.get('n_train')} training, {d.get('n_val')} validation, "
                   f"classes {', '.join(d.get('classes') or [])})")
        out.append(f"  validation accuracy {_pct(self.val_accuracy)}; test accuracy {_pct(self.test_accuracy)}")
        out.append(f"  model: {self.model_path or 'none saved'}")
        out.append("  settings: " + ", ".join(f"{k}={v}" for k, v in self.config.items() if k != "augment"))
        if self.augmented:
            out.append("  augmentation: " + ", ".join(f"{k}={v}" for k, v in self.config["augment"].items()))
        for h in self.history:
            out.append(f"    epoch {h['epoch']:3d}  train loss {h['train_loss']:.4f} acc {h['train_acc'] * 100:5.1f}%  "
                       f"val loss {h['val_loss']:.4f} acc {h['val_acc'] * 100:5.1f}%")
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "RunRecord":
        """The record ``d`` describes; CatdogError naming the first field of the wrong kind (a file damaged
        or edited by hand is listed as damaged, never half-shown)."""
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in d.items() if k in known}
        for name, kinds in _FIELD_KINDS.items():
            if name in values and not _is(values[name], kinds):
                raise CatdogError(f"its {name} is {_kind_name(values[name])}, not {_KIND_WORDS[kinds[0]]}")
        if not values.get("id") or "status" not in values or "config" not in values:
            raise CatdogError("missing its id, status or config")
        for i, h in enumerate(values.get("history") or []):
            if not isinstance(h, dict) or not _is(h.get("epoch"), (int,)) or any(
                    not _is(h.get(k), (int, float)) for k in _EPOCH_KEYS):
                raise CatdogError(f"epoch {i + 1} of its history lacks a number for one of {', '.join(_EPOCH_KEYS)}")
        for which in ("validation", "test"):
            m = (values.get("metrics") or {}).get(which)
            if m is not None and (not isinstance(m, dict) or not _is(m.get("accuracy"), (int, float))):
                raise CatdogError(f"its {which} metrics have no accuracy")
            if m is not None:
                per_class, confusion = m.get("per_class", {}), m.get("confusion", [])
                if not isinstance(per_class, dict) or not all(
                        isinstance(v, dict) and all(_is(x, (int, float)) for x in v.values()) for v in per_class.values()):
                    raise CatdogError(f"its {which} metrics' per-class table is not numbers")
                if not isinstance(confusion, list) or not all(
                        isinstance(row, list) and all(_is(x, (int,)) for x in row) for row in confusion):
                    raise CatdogError(f"its {which} confusion matrix is not rows of counts")
        data = values.get("dataset") or {}
        for key, kinds in _DATASET_KINDS.items():
            if key in data and not (data[key] is None or _is(data[key], kinds)):
                raise CatdogError(f"its dataset's {key} is {_kind_name(data[key])}")
        if not all(isinstance(c, str) for c in data.get("classes") or []):
            raise CatdogError("its dataset's classes are not all names")
        config = values["config"]
        if not isinstance(config.get("augment", {}), dict) or not isinstance(config.get("model", ""), str):
            raise CatdogError("its config's model or augmentation is damaged")
        return cls(**values)


#: what each field of a run file must hold (None allowed only where listed)
_FIELD_KINDS = {"id": (str,), "status": (str,), "config": (dict,), "name": (str,), "note": (str,),
                "starred": (bool,), "source": (str,), "reason": (str,), "started": (str,),
                "duration_s": (int, float), "device": (str,), "mode": (str,), "dataset": (dict,),
                "history": (list,), "best_epoch": (int,), "metrics": (dict,), "model_path": (str, type(None))}
#: what a run's dataset description may hold (each may also be null)
_DATASET_KINDS = {"root": (str,), "val_root": (str,), "val_source": (str,), "classes": (list,), "n_train": (int,),
                  "n_val": (int,), "val_fraction": (int, float), "split_seed": (int,), "split_version": (int,)}
#: the numbers every history entry must have (what ``lines``, the Runs tab and its plots read)
_EPOCH_KEYS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc")


def _is(value, kinds: tuple) -> bool:
    if isinstance(value, bool) and bool not in kinds:
        return False
    if isinstance(value, float) and not math.isfinite(value):
        return False
    return isinstance(value, kinds)


_KIND_WORDS = {str: "text", dict: "a table", list: "a list", bool: "true or false", int: "a number"}


def _kind_name(value) -> str:
    if value is None:
        return "empty (null)"
    return next((w for k, w in _KIND_WORDS.items() if isinstance(value, k) and (k is bool or not isinstance(value, bool))),
                "a number that is not finite" if isinstance(value, float) else type(value).__name__)


@dataclass(frozen=True)
class DamagedRun:
    """A run file that could not be loaded: listed, never loaded, never in the way of the others."""

    id: str
    path: Path
    reason: str


def new_run_id(model: str) -> str:
    """``20261201-101500-lenet5-3f2a``: sorts by time, unique, safe as a file name."""
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in model)[:40] or "run"
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{safe}-{secrets.token_hex(2)}"


class RunStore:
    """The runs in one folder (default ``app_data_dir() / "runs"``)."""

    def __init__(self, folder: Optional[PathLike] = None):
        self.folder = Path(folder).expanduser() if folder else app_data_dir() / "runs"

    def _path(self, run_id: str) -> Path:
        if not run_id or "/" in run_id or "\\" in run_id or run_id.startswith("."):
            raise CatdogError(f"{run_id!r} is not a run id")
        return self.folder / f"{run_id}.json"

    # -- reading ------------------------------------------------------------------------------
    def entries(self) -> list[Union[RunRecord, DamagedRun]]:
        """Every run, newest first; damaged files as :class:`DamagedRun`."""
        if not self.folder.is_dir():
            return []
        out: list = []
        for p in sorted(self.folder.glob("*.json"), reverse=True):
            if p.name.startswith("."):
                continue
            try:
                out.append(self._read(p))
            except CatdogError as e:
                out.append(DamagedRun(p.stem, p, str(e)))
        return out

    def runs(self) -> list[RunRecord]:
        """The runs that load, newest first."""
        return [r for r in self.entries() if isinstance(r, RunRecord)]

    def damaged(self) -> list[DamagedRun]:
        return [r for r in self.entries() if isinstance(r, DamagedRun)]

    def get(self, run_id: str) -> RunRecord:
        """The run ``run_id`` (a unique prefix is enough); CatdogError when there is none."""
        p = self._path(run_id)
        if not p.exists():
            matches = [q for q in self.folder.glob(f"{run_id}*.json")] if self.folder.is_dir() else []
            if len(matches) == 1:
                p = matches[0]
            elif len(matches) > 1:
                raise CatdogError(f"{run_id!r} matches {len(matches)} runs: give more of the id")
            else:
                raise CatdogError(f"no run {run_id!r} (see `catdog runs`)")
        return self._read(p)

    @staticmethod
    def _read(p: Path) -> RunRecord:
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise CatdogError(f"unreadable run file {p.name}: {getattr(e, 'strerror', None) or e}") from None
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise CatdogError(f"{p.name} is not a catdog-gui run file")
        v = d.get("version")
        if not isinstance(v, int) or v > VERSION or v < 1:
            raise CatdogError(f"{p.name} is a run file of version {v}; this catdog-gui reads version {VERSION} "
                              "(update catdog-gui to open it)")
        try:
            return RunRecord.from_dict(d)
        except (CatdogError, TypeError) as e:
            raise CatdogError(f"{p.name} is damaged: {e}") from None

    # -- writing ------------------------------------------------------------------------------
    def save(self, record: RunRecord) -> Path:
        """Write ``record`` atomically (a new file, or the run's own file replaced)."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise CatdogError(f"cannot create the runs folder {self.folder}: {e.strerror or e}") from None
        text = json.dumps(record.to_dict(), indent=1, default=_plain)
        return atomic_write(self._path(record.id), lambda f: f.write(text.encode("utf-8")))

    def update(self, run_id: str, **changes) -> RunRecord:
        """Rename, note or star a run: ``update(id, name="...", note="...", starred=True)``."""
        allowed = {"name", "note", "starred"}
        bad = sorted(set(changes) - allowed)
        if bad:
            raise CatdogError(f"cannot change {', '.join(bad)} of a run (only {', '.join(sorted(allowed))})")
        rec = self.get(run_id)
        for k, v in changes.items():
            setattr(rec, k, bool(v) if k == "starred" else str(v))
        self.save(rec)
        return rec

    def set_test_metrics(self, run_id: str, metrics: dict, folder: str) -> RunRecord:
        """Record an evaluation on a test folder the run never saw (``Metrics.to_dict()``)."""
        rec = self.get(run_id)
        rec.metrics = dict(rec.metrics or {})
        rec.metrics["test"] = dict(metrics, folder=str(folder))
        self.save(rec)
        return rec

    def delete(self, run_id: str, delete_model: bool = False) -> RunRecord:
        """Forget a run; its model file is kept unless ``delete_model`` (the window moves it to the
        system trash itself and asks first)."""
        rec = self.get(run_id)
        path = self._path(rec.id)
        if delete_model and rec.model_path:
            try:
                Path(rec.model_path).unlink()
            except FileNotFoundError:
                pass
            except OSError as e:
                raise CatdogError(f"cannot delete {rec.model_path}: {e.strerror or e}") from None
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as e:
            raise CatdogError(f"cannot delete the run {rec.id}: {e.strerror or e}") from None
        return rec

    def export(self, run_id: str, dest: PathLike) -> Path:
        """A folder a colleague can open: ``run.json``, the model file, and a short README."""
        rec = self.get(run_id)
        out = Path(dest).expanduser() / rec.id
        if out.exists():
            raise CatdogError(f"{out} already exists: choose another folder")
        try:
            out.mkdir(parents=True)
            copy = RunRecord.from_dict(asdict(rec))
            if rec.model_path and Path(rec.model_path).is_file():
                shutil.copy2(rec.model_path, out / Path(rec.model_path).name)
                copy.model_path = Path(rec.model_path).name
            (out / "run.json").write_text(json.dumps(copy.to_dict(), indent=1, default=_plain), encoding="utf-8")
            (out / "README.txt").write_text(
                f"{rec.title}\n\nA catdog-gui training run: settings, per-epoch history and metrics in run.json"
                + (f"; the model in {copy.model_path} (open it in catdog-gui, or `catdog predict "
                   f"{copy.model_path} PHOTO`)" if copy.model_path else "") + ".\n", encoding="utf-8")
        except OSError as e:
            raise CatdogError(f"cannot export to {out}: {e.strerror or e}") from None
        return out


def _plain(x: Any):
    """JSON for what is not: NaN stays (json writes NaN), paths and enums become text."""
    return str(x)


# ------------------------------------------------------------------------------------------------
# recording a run: a trainer callback


class RunRecorder:
    """A trainer callback that writes the run into a :class:`RunStore` when it finishes (and keeps
    the record: ``recorder.record``). Failed runs are stored too, with their reason. A store that
    cannot be written never costs the user the run: ``recorder.error`` says why."""

    def __init__(self, store: Optional[RunStore] = None, source: str = "api", name: str = ""):
        self.store = store or RunStore()
        self.source = source
        self.name = name
        self.record: Optional[RunRecord] = None
        self.error: Optional[str] = None
        self._t0 = time.perf_counter()
        self._started = _dt.datetime.now().isoformat(timespec="seconds")
        self._report = None
        self._start = None

    def __call__(self, ev) -> None:
        from ..events import DatasetScanned, Finished, RunStarted

        if isinstance(ev, DatasetScanned):
            self._report = ev.report
        elif isinstance(ev, RunStarted):
            self._start = ev
        elif isinstance(ev, Finished):
            self._finish(ev)

    def _finish(self, fin) -> None:
        start, rep = self._start, self._report
        config = dict(start.config) if start is not None else {}
        dataset: dict = {}
        if rep is not None:
            from ..data.split import SPLIT_VERSION

            dataset = {"root": str(rep.root), "val_root": str(rep.val_root) if rep.val_root else None,
                       "classes": list(rep.classes), "n_train": start.n_train if start else rep.n_train,
                       "n_val": start.n_val if start else rep.n_val, "val_source": rep.val_source,
                       "val_fraction": rep.val_fraction, "split_seed": rep.split_seed,
                       "split_version": SPLIT_VERSION if rep.val_source == "split" else None}
        model = str(config.get("model", "model"))
        self.record = RunRecord(
            id=new_run_id(model), status=str(fin.status), config=config, name=self.name, source=self.source,
            reason=fin.reason, started=self._started, duration_s=round(time.perf_counter() - self._t0, 2),
            device=start.device if start else "", mode=start.mode if start else "", dataset=dataset,
            history=[asdict(e) for e in fin.history], best_epoch=fin.best_epoch,
            metrics={"validation": ({**fin.metrics.to_dict(with_mistakes=False), "seen_in_training": fin.val_seen}
                                    if fin.metrics is not None else None),
                     "test": None},
            model_path=str(Path(fin.best_path).resolve()) if fin.best_path else None,
        )
        try:
            self.store.save(self.record)
        except CatdogError as e:
            self.error = str(e)


# ------------------------------------------------------------------------------------------------
# comparing


def flat_settings(d: dict, prefix: str = "") -> dict:
    """Nested settings as one level: ``{"augment": {"rotation": 10}}`` -> ``{"augment.rotation": 10}``."""
    out = {}
    for k, v in (d or {}).items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flat_settings(v, key + "."))
        else:
            out[key] = v
    return out


def differing_settings(a: RunRecord, b: RunRecord) -> dict[str, tuple]:
    """Every setting whose value differs between two runs (augmentation as ``augment.rotation``...),
    plus the dataset when it is not the same folder and split."""
    fa, fb = flat_settings(a.config), flat_settings(b.config)
    out = {k: (fa.get(k), fb.get(k)) for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)}
    for k in ("root", "val_root", "val_fraction", "split_seed", "split_version"):
        va, vb = a.dataset.get(k), b.dataset.get(k)
        if k == "split_version" and a.dataset.get("val_source") == b.dataset.get("val_source") == "split":
            va, vb = va or 1, vb or 1  # a split recorded without a version is version 1
        if va != vb:
            out[f"dataset.{k}"] = (va, vb)
    return out


def compare(a: RunRecord, b: RunRecord) -> dict:
    """Two runs side by side: the settings that differ, the headline metrics and each class's
    change in precision, recall and F1 (validation)."""
    def per_class(r):
        m = (r.metrics or {}).get("validation") or {}
        return m.get("per_class") or {}

    pa, pb = per_class(a), per_class(b)
    classes = sorted(set(pa) | set(pb))
    return {
        "runs": [a.id, b.id],
        "settings": {k: list(v) for k, v in differing_settings(a, b).items()},
        "metrics": {
            "val_accuracy": [a.val_accuracy, b.val_accuracy],
            "test_accuracy": [a.test_accuracy, b.test_accuracy],
            "best_epoch": [a.best_epoch, b.best_epoch],
            "epochs": [a.epochs, b.epochs],
            "duration_s": [a.duration_s, b.duration_s],
        },
        "per_class": {c: {k: [pa.get(c, {}).get(k), pb.get(c, {}).get(k)] for k in ("precision", "recall", "f1")}
                      for c in classes},
    }


# ------------------------------------------------------------------------------------------------
# the runs as text (``catdog runs``)


def _pct(v) -> str:
    return "-" if v is None else f"{v * 100:.1f}%"


def list_lines(entries: list[Union[RunRecord, DamagedRun]]) -> list[str]:
    """A table of runs (``catdog runs``): a header, then one line per run; a damaged file says why."""
    out = [f"{'id':<32} {'name':<34} {'status':<13} {'epochs':>6} {'val acc':>8} {'test acc':>8} {'time':>7}"]
    for e in entries:
        if not isinstance(e, RunRecord):
            out.append(f"{e.id:<32} DAMAGED: {e.reason}")
            continue
        star = "* " if e.starred else ""
        out.append(f"{e.id:<32} {(star + e.title)[:34]:<34} {e.status:<13} {e.epochs:>6} {_pct(e.val_accuracy):>8} "
                   f"{_pct(e.test_accuracy):>8} {e.duration_s:>6.0f}s")
    return out


def compare_lines(a: RunRecord, b: RunRecord) -> list[str]:
    """Two runs side by side (``catdog runs compare``): the settings that differ, the metrics and
    each class's precision, recall and F1 with the change from ``a`` to ``b``."""
    c = compare(a, b)
    w = 28
    out = [f"{'':<{w}} {a.id:>32} {b.id:>32}", f"{'name':<{w}} {a.title[:32]:>32} {b.title[:32]:>32}",
           "settings that differ:" if c["settings"] else "settings: the same"]
    for k, (va, vb) in c["settings"].items():
        out.append(f"  {k:<{w - 2}} {str(va)[:32]:>32} {str(vb)[:32]:>32}")
    out.append("metrics:")
    for k, (va, vb) in c["metrics"].items():
        fmt = _pct if "accuracy" in k else (lambda v: "-" if v is None else f"{v:g}")
        out.append(f"  {k:<{w - 2}} {fmt(va):>32} {fmt(vb):>32}")
    if c["per_class"]:
        out.append("per class (validation):")
    for cls, m in c["per_class"].items():
        for k, (va, vb) in m.items():
            change = f" ({(vb - va) * 100:+.1f})" if va is not None and vb is not None else ""
            out.append(f"  {cls + ' ' + k:<{w - 2}} {_pct(va):>32} {_pct(vb) + change:>32}")
    return out
