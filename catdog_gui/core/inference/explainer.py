"""One photo through one model, ready to explain: the trace, the units shown, the first epoch, the page.

No Qt here: ``catdog explain`` and the Network tab's explainer build the same :class:`Explanation`
(:func:`explain_photo`) and write the same page (:func:`page_for`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import CatdogError
from ..storage.files import atomic_write
from ..storage.modelfile import read_first_epoch
from ..text import probability_text
from . import explain_html
from .unit_arithmetic import Trace, is_explainable, trace, unit_arithmetic, with_weights


@dataclass(frozen=True)
class Explanation:
    """A LeNet-5 and one photo, every unit's value computed."""

    model: object  # the nn.Module
    trace: Trace
    photo_name: str
    model_name: str  # the file's name
    first: tuple[int, object, Trace] | None  # (epoch, model with those weights, its trace) when kept
    best_epoch: int
    #: set when the model averages each photo with its mirror image (test-time augmentation): what the
    #: Prediction tab prints then, e.g. "52.0% cat, 48.0% dog" (the units here are the photo's alone)
    mirrored_text: str = ""

    def unit(self, layer: str, channel: int = 0, y: int = 0, x: int = 0):
        return unit_arithmetic(self.model, self.trace, layer, channel, y, x)

    def first_unit(self, layer: str, channel: int = 0, y: int = 0, x: int = 0):
        """The same unit with the first saved epoch's weights (None when the file kept none)."""
        if self.first is None:
            return None
        return unit_arithmetic(self.first[1], self.first[2], layer, channel, y, x)

    @property
    def prediction_text(self) -> str:
        """'87.5% dog, 12.5% cat', as the Prediction tab writes it."""
        p = self.trace.probabilities
        order = np.argsort(-p)
        return ", ".join(f"{probability_text(float(p[i]))} {self.trace.classes[i]}" for i in order)


def not_explainable_text(title: str) -> str:
    return (f"{title} is a pretrained backbone: its blocks are shown as volumes with their shapes (the layer "
            "table) and Grad-CAM; the unit-by-unit arithmetic is for LeNet-5 models")


#: (path, size, mtime) -> the first epoch's weights: read once per model file, not once per photo
_FIRST_CACHE: dict[tuple, tuple[int, dict] | None] = {}


def _first_epoch(path: Path) -> tuple[int, dict] | None:
    try:
        st = Path(path).stat()
    except OSError:
        return None
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _FIRST_CACHE:
        _FIRST_CACHE.clear()  # one model at a time
        _FIRST_CACHE[key] = read_first_epoch(path)
    return _FIRST_CACHE[key]


def explain_photo(predictor, array: np.ndarray, photo_name: str) -> Explanation:
    """Trace the uint8 (3, S, S) ``array`` (what ``predictor`` sees for a photo) through its model, and
    through the first saved epoch's weights when the model file kept them. Raises
    :class:`CatdogError` for a model that is not a LeNet-5."""
    from ..models import title_of

    model = predictor.model
    if not is_explainable(model):
        raise CatdogError(not_explainable_text(title_of(predictor.info.model_name)))
    x = predictor.to_input(np.ascontiguousarray(array)[None]).float().cpu()
    classes = tuple(predictor.info.classes)
    tr = trace(model, x, classes)
    first = None
    kept = _first_epoch(predictor.path)
    if kept is not None:
        try:
            early = with_weights(model, kept[1])
            first = (kept[0], early, trace(early, x, classes))
        except ValueError:
            first = None
    best = int(predictor.info.metrics.get("best_epoch") or 0)
    mirrored = ""
    if getattr(predictor, "tta", False):
        p = predictor.probabilities(np.ascontiguousarray(array)[None])[0]
        mirrored = ", ".join(f"{probability_text(float(p[i]))} {classes[i]}" for i in np.argsort(-p))
    return Explanation(model, tr, photo_name, Path(predictor.path).name, first, best, mirrored)


def mirrored_note(ex: Explanation) -> str:
    """One sentence for a model that averages with the mirror image ("" otherwise)."""
    if not ex.mirrored_text:
        return ""
    return (f"This model averages each photo with its mirror image (test-time augmentation), so the Prediction "
            f"tab shows {ex.mirrored_text}; the units here are those of the photo itself.")


def default_units(ex: Explanation) -> list[tuple[str, int, int, int]]:
    """The units the page explains when none is chosen: a middle unit of every map layer (C3's first
    map reads only three of S2's maps), the most active unit of each flat layer, the winning class."""
    picks = []
    for st in ex.trace.stages[1:]:
        _c, h, w = st.out.shape
        if st.flat:
            ch = int(np.argmax(ex.trace.logits)) if st.name == "output" else int(np.argmax(np.abs(st.out.reshape(-1))))
            picks.append((st.name, ch, 0, 0))
        else:
            picks.append((st.name, 0, h // 2, w // 2))
    return picks


def page_for(ex: Explanation, selected: tuple[str, int, int, int] | None = None) -> str:
    """The self-contained HTML page: the overview, the chosen unit (or :func:`default_units`), the
    softmax, and what training changed for that unit when the first epoch was kept."""
    picks = default_units(ex)
    if selected is not None and selected[0] != "softmax":
        picks = [selected] + [p for p in picks if p[0] != selected[0]]
    units = [ex.unit(*p) for p in picks] + [ex.unit("softmax")]
    change = ""
    if ex.first is not None:
        key = picks[0]
        change = explain_html.training_change_html(ex.first_unit(*key), ex.unit(*key), ex.first[0], ex.best_epoch)
    title = f"{ex.model_name} explained on {ex.photo_name}"
    subtitle = f"The network says: {ex.prediction_text}. {mirrored_note(ex)}".strip()
    return explain_html.page_html(ex.trace, units, title=title, subtitle=subtitle, before_after=change)


def write_page(path: Path | str, text: str) -> Path:
    """Write the page atomically (UTF-8)."""
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))
