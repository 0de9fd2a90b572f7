"""The train/validation split (no Qt): stratified, seeded, stable as a dataset grows.

Each photo's side depends only on the seed and its own ``folder/name``; groups of identical or
near-identical photos move together, so validation accuracy is measured on photos the model did not
train on. :data:`SPLIT_VERSION` is recorded in model files and runs.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from pathlib import Path
from typing import Sequence

from .layouts import Sample

#: how a split is drawn (model files and run records keep it): 2, each photo's side from a hash of the
#: seed and its name; 1 (also a record without a version), one seeded permutation over the classes in turn
SPLIT_VERSION = 2


def _split_rank(seed: int, unit: Sequence[Sample]) -> tuple[bytes, str]:
    """Where a unit (a photo, or identical copies) falls in its class's seeded order: a hash of the
    seed and the unit's ``folder/name``, so a photo keeps its place whatever else the class holds,
    and wherever the dataset folder is moved."""
    first = min(f"{s.path.parent.name}/{s.path.name}" for s in unit)
    digest = hashlib.blake2b(f"{seed}\0{first}".encode("utf-8", "surrogateescape"), digest_size=8).digest()
    return digest, min(str(s.path) for s in unit)


def stratified_split(
    samples: Sequence[Sample], val_fraction: float, seed: int, group_of: dict[Path, int] | None = None
) -> tuple[list[Sample], list[Sample]]:
    """Per class, put about ``val_fraction`` of the images in validation; identical files
    (same ``group_of`` id) move together. Seeded: the same input gives the same split.

    Stable as a dataset grows: each photo's place in its class's order depends only on the seed
    and its own name (:func:`_split_rank`), not on the other photos. Photos added to one class
    (a camera burst) leave every other class's split exactly as it was, and move at most as many
    of that class's photos as were added (more only when a group of identical copies, which moves
    as one, is displaced)."""
    group_of = group_of or {}
    train: list[Sample] = []
    val: list[Sample] = []
    by_label: dict[int, list[Sample]] = defaultdict(list)
    for s in samples:
        by_label[s.label].append(s)
    for label in sorted(by_label):
        units: dict[object, list[Sample]] = defaultdict(list)
        for s in by_label[label]:
            units[group_of.get(s.path, s.path)].append(s)
        ordered = sorted(units.values(), key=lambda u: _split_rank(seed, u))
        n_total = len(by_label[label])
        want = int(round(n_total * val_fraction))
        if n_total >= 2:
            want = min(max(want, 1), n_total - 1)
        taken = 0
        for unit in ordered:
            if taken < want and taken + len(unit) <= want + (1 if taken == 0 else 0):
                val.extend(unit)
                taken += len(unit)
            else:
                train.extend(unit)
    # a duplicate group whose copies carry different labels must still stay on one side
    if group_of:
        train_groups = {group_of[s.path] for s in train if s.path in group_of}
        moved = [s for s in val if s.path in group_of and group_of[s.path] in train_groups]
        if moved:
            val = [s for s in val if s not in moved]
            train.extend(moved)
    train.sort(key=lambda s: (s.label, str(s.path)))
    val.sort(key=lambda s: (s.label, str(s.path)))
    return train, val
