"""A review plan: relabel, remove or keep photos of a dataset, applied in place, logged and undoable. No Qt.

A plan is a list of actions, each with the file's size, modification time and content hash as the
review saw it (:func:`make_plan`; :func:`proposed_plan` turns a :class:`~.review.Review`'s suggestions
into one). :func:`apply_plan` checks every action first, so a plan whose files have changed
(:class:`StalePlanError`) or that points outside the dataset changes nothing. Actions never leave
the dataset folder: relabel moves a photo to where a photo of the other class belongs in the same part
and layout (:func:`catdog_gui.core.data.layouts.place_for`), remove moves it into
``<dataset>/_removed/<path>``, keep is remembered in the review's memory
(:mod:`catdog_gui.core.storage.dataset_memory`) with the log of every applied batch, so :func:`undo_last` can move
the files back. Name clashes get new names (:func:`catdog_gui.core.storage.files.unique_path`):
nothing is overwritten or deleted.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Optional, Sequence

from ..data.layouts import REMOVED_DIR, place_for
from ..errors import CatdogError
from ..storage.files import unique_path
from ..storage.dataset_memory import load_memory, save_memory
from .review import Review, photo_identity


class StalePlanError(CatdogError):
    """A plan made against files that have changed (or gone) since."""

    def __init__(self, changed: list[str]):
        self.changed = changed
        shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
        super().__init__(f"the review is out of date: {shown} changed since it was made; review again")


def make_plan(review: Review, actions: Sequence[tuple[str, str, Optional[str]]]) -> dict:
    """A plan: ``actions`` as (action, path, target class or None), each with the file's identity as the
    review recorded it (size, time, content hash; a photo it did not record, as it is now), so that applying
    the plan refuses a photo replaced or edited since it was reviewed."""
    out = []
    review.remember(path for _a, path, _to in actions)
    for action, path, to in actions:
        size, mtime_ns, sha = review.identities.get(str(path)) or (None, None, "")
        out.append({"action": action, "path": os.path.relpath(path, review.root), "to": to,
                    "size": size, "mtime_ns": mtime_ns, "sha256": sha})
    return {"dataset": review.root, "actions": out}


def proposed_plan(review: Review, top: Optional[int] = None) -> dict:
    """The review's suggestions as a plan to edit and apply: relabel each likely label error to
    its suggested class, remove each outlier and every near-duplicate copy but the first."""
    actions: list[tuple[str, str, Optional[str]]] = []
    seen: set[str] = set()
    for s in review.label_errors[:top]:
        actions.append(("relabel", s.path, s.suggested))
        seen.add(s.path)
    for s in review.outliers[:top]:
        if s.path not in seen:
            actions.append(("remove", s.path, None))
            seen.add(s.path)
    for g in review.duplicate_groups[:top]:
        for p in g[1:]:
            if p not in seen and os.path.exists(p):
                actions.append(("remove", p, None))
                seen.add(p)
    return make_plan(review, actions)


def _inside(root: Path, path: Path) -> bool:
    r, p = os.path.realpath(root), os.path.realpath(path)
    return os.path.commonpath([r, p]) == r


def apply_plan(root, plan: dict) -> list[dict]:
    """Apply a reviewed plan's actions (all checked first: a stale or unsafe plan changes nothing).
    Returns the log entries (one per action); the batch is appended to the dataset's log."""
    root = Path(root)
    changed, problems = [], []
    seen: set[str] = set()
    for a in plan["actions"]:
        if a.get("path") in seen:
            problems.append(f"{a['path']} appears twice")
            continue
        seen.add(a.get("path"))
        if a["action"] not in ("relabel", "remove", "keep"):
            problems.append(f"unknown action {a['action']!r} for {a['path']}")
            continue
        p = root / a["path"]
        if not _inside(root, p):
            problems.append(f"{a['path']} (outside the dataset)")
            continue
        if a["action"] == "relabel":
            try:
                place_for(root, p, a.get("to"))
            except CatdogError as e:
                problems.append(str(e))
                continue
        try:
            st = os.stat(p)
        except OSError:
            changed.append(a["path"])
            continue
        if st.st_size != a.get("size") or st.st_mtime_ns != a.get("mtime_ns"):
            changed.append(a["path"])
        elif a.get("sha256") and (photo_identity(p) or [None] * 3)[2] != a["sha256"]:
            changed.append(a["path"])
    if problems:
        raise CatdogError("the plan cannot be applied: " + "; ".join(problems))
    if changed:
        raise StalePlanError(changed)
    state = load_memory(root)
    entries = []
    try:
        for a in plan["actions"]:
            src = root / a["path"]
            if a["action"] == "keep":
                if a["path"] not in state.keep:
                    state.keep.append(a["path"])
                entries.append({"action": "keep", "path": a["path"]})
                continue
            if a["action"] == "relabel":
                dst = place_for(root, src, a["to"])
            else:
                dst = root / REMOVED_DIR / Path(a["path"])
            dst = unique_path(dst)
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.rename(src, dst)  # same folder tree: a rename, never a copy
            entries.append({"action": a["action"], "path": a["path"], "to": os.path.relpath(dst, root)})
    finally:  # a disk error halfway: what was done is logged, so it can be undone
        if entries:
            state.log.append({"time": time.time(), "entries": entries})
            save_memory(root, state)
    return entries


def undo_last(root) -> list[dict]:
    """Undo the last applied batch: moved photos go back (to a new name if their old one is
    taken), kept photos may be suggested again. Returns the undone entries ([] when none). An entry
    that names a place outside the dataset (a damaged log) moves nothing."""
    root = Path(root)
    state = load_memory(root)
    if not state.log:
        return []
    batch = state.log.pop()
    for e in reversed(batch["entries"]):
        if e["action"] == "keep":
            if e["path"] in state.keep:
                state.keep.remove(e["path"])
            continue
        src = root / e["to"]
        if not (_inside(root, src) and _inside(root, root / e["path"])) or not src.is_file():
            continue
        dst = unique_path(root / e["path"])
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.rename(src, dst)
    save_memory(root, state)
    return batch["entries"]


def load_plan(path) -> dict:
    """Read a plan file (``catdog review --write-plan`` writes one); CatdogError if it is not one."""
    try:
        plan = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise CatdogError(f"cannot read the plan {path}: {e}") from None
    if not isinstance(plan, dict) or not isinstance(plan.get("actions"), list):
        raise CatdogError(f"{path} is not a review plan (no \"actions\" list)")
    for i, a in enumerate(plan["actions"], 1):
        ok = (isinstance(a, dict) and a.get("action") in ("relabel", "remove", "keep")
              and isinstance(a.get("path"), str) and a["path"] and "\0" not in a["path"]
              and (a.get("to") is None or (isinstance(a["to"], str) and "\0" not in a["to"]))
              and all(isinstance(a.get(k), int) and not isinstance(a.get(k), bool) for k in ("size", "mtime_ns")))
        if not ok:
            raise CatdogError(f"{path}: action {i} is damaged (each action needs \"action\" relabel, remove or "
                              "keep, a \"path\", \"to\" for a relabel, and the file's \"size\" and \"mtime_ns\" "
                              "as the review wrote them)")
    return plan


__all__ = ["StalePlanError", "apply_plan", "load_plan", "make_plan", "proposed_plan", "undo_last"]
