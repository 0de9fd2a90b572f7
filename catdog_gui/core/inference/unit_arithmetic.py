"""Every unit of a LeNet-5, and the arithmetic that made its value, recomputed from the weights.

No Qt here: the Network tab's explainer, the HTML page and ``catdog explain`` all read these numbers.

* :func:`trace` runs one normalised image through a LeNet-5 (original or modern) in NumPy, float64,
  from the model's own weights, and keeps every layer's volume before and after its activation: the
  :class:`Trace` the overview colours unit by unit.
* :func:`unit_arithmetic` rebuilds how one unit's value was computed, with the real numbers:

  - :class:`ConvUnit` - the input patch of each channel it reads (for C3 only the S2 maps its column of
    Table I connects; the others are kept, marked not connected), the kernel, the element-wise products,
    their sum per channel, the bias, the total and the activation applied;
  - :class:`SubsampleUnit` - LeNet-5's S2/S4: the 2x2 window, its average, times 4 and the trainable
    coefficient, plus the bias, through the activation;
  - :class:`MaxPoolUnit` - the modern variant's 2x2 maximum;
  - :class:`FullUnit` - full connection (the paper's C5, F6, the output): every weight x input, the
    largest contributions first, the rest summed, the bias and the total;
  - :class:`SoftmaxUnit` - the logits, their exponentials, the sum and each probability.

Nothing here calls the model's forward pass: the tests compare every number with PyTorch's (through
forward hooks), so the arithmetic shown is the arithmetic the network does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from torch import nn

#: LeNet-5's squashing function f(a) = A tanh(S a)
TANH_A, TANH_S = 1.7159, 2.0 / 3.0

#: how each activation reads on screen
ACTIVATION_TEXT = {
    "scaled_tanh": "1.7159 · tanh(2/3 · x)",
    "relu": "max(0, x)",
    "none": "none (the value is the total)",
}

#: the summary names of a LeNet-5 -> the paper's labels
LABELS = {"input": "INPUT", "c1": "C1", "s2": "S2", "c3": "C3", "s4": "S4", "c5": "C5", "f6": "F6",
          "output": "OUTPUT"}

#: contributions a full-connection unit lists one by one before summing the rest
TOP_CONTRIBUTIONS = 10


def activate(name: str, x):
    """``name``'s activation (see :data:`ACTIVATION_TEXT`) applied to ``x`` (a number or an array)."""
    if name == "scaled_tanh":
        return TANH_A * np.tanh(TANH_S * np.asarray(x, np.float64))
    if name == "relu":
        return np.maximum(np.asarray(x, np.float64), 0.0)
    if name == "none":
        return np.asarray(x, np.float64)
    raise ValueError(f"unknown activation {name!r}")


def _np(t) -> np.ndarray:
    return t.detach().to("cpu").double().numpy()


# ------------------------------------------------------------------------------------------------
# the whole network for one image


@dataclass(frozen=True)
class Stage:
    """One layer's output volume for the image."""

    name: str  # the model's layer name: "c1" ... "output"; "input" for the image
    label: str  # the paper's label: "C1" ... "OUTPUT"
    kind: str  # "input", "conv", "subsample", "maxpool", "full"
    activation: str  # a key of ACTIVATION_TEXT
    pre: np.ndarray  # (C, H, W) float64 before the activation (a flat layer is (C, 1, 1))
    out: np.ndarray  # (C, H, W) after it: what the next layer reads

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.out.shape)  # type: ignore[return-value]

    @property
    def flat(self) -> bool:
        return self.out.shape[1] == 1 and self.out.shape[2] == 1


@dataclass(frozen=True)
class Trace:
    """Every stage of a LeNet-5 for one normalised image, plus the softmax of its output."""

    model_name: str  # "lenet5" or "lenet5_modern"
    classes: tuple[str, ...]
    stages: tuple[Stage, ...]  # input, c1, s2, c3, s4, c5, f6, output

    def stage(self, name: str) -> Stage:
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(f"no layer named {name}")

    def before(self, name: str) -> Stage:
        """The stage a layer reads."""
        names = [s.name for s in self.stages]
        return self.stages[names.index(name) - 1]

    @property
    def logits(self) -> np.ndarray:
        return self.stages[-1].out.reshape(-1)

    @property
    def probabilities(self) -> np.ndarray:
        return softmax_unit(self).probabilities


def is_explainable(model: nn.Module) -> bool:
    """Whether :func:`trace` can take this model apart unit by unit (the two LeNet-5s)."""
    from ..models.lenet import LeNet5, LeNet5Modern

    return isinstance(model, (LeNet5, LeNet5Modern))


def _conv(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Valid, stride-1 convolution (PyTorch's cross-correlation): (C,H,W) x (O,C,k,k) -> (O,H',W')."""
    k = w.shape[-1]
    windows = sliding_window_view(x, (k, k), axis=(1, 2))  # (C, H', W', k, k)
    return np.einsum("chwij,ocij->ohw", windows, w, optimize=True) + b.reshape(-1, 1, 1)


def _windows2(x: np.ndarray) -> np.ndarray:
    """(C, H, W) -> (C, H//2, W//2, 2, 2): the 2x2 windows of a stride-2 pooling."""
    c, h, w = x.shape
    x = x[:, : h // 2 * 2, : w // 2 * 2]
    return x.reshape(c, h // 2, 2, w // 2, 2).transpose(0, 1, 3, 2, 4)


def conv_weights(module: nn.Module) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(weights (O,C,k,k), bias (O,), connection mask (O,C) of 0/1) of a convolution; C3's mask is its
    Table I, every other convolution's is all ones. The weights are the stored ones, not masked."""
    w = _np(module.weight)
    mask = _np(module.mask).reshape(w.shape[0], w.shape[1]) if hasattr(module, "mask") else np.ones(w.shape[:2])
    return w, _np(module.bias), mask


def trace(model: nn.Module, x, classes=()) -> Trace:
    """Every layer's volume for one normalised image ``x`` ((3,S,S) or (1,3,S,S), a tensor or an array)."""
    from ..models.lenet import LeNet5

    x = np.asarray(x.detach().cpu().double().numpy() if hasattr(x, "detach") else x, np.float64)
    if x.ndim == 4:
        x = x[0]
    if not is_explainable(model):
        raise ValueError("the unit-by-unit explainer takes LeNet-5 models (original or modern) apart; "
                         "this model is explained by its blocks instead")
    classes = tuple(classes) or tuple(f"class {i}" for i in range(model.output.out_features))
    stages = [Stage("input", "INPUT", "input", "none", x, x)]

    def add(name, kind, act, pre):
        pre = pre if pre.ndim == 3 else pre.reshape(-1, 1, 1)
        stages.append(Stage(name, LABELS[name], kind, act, pre, activate(act, pre)))
        return stages[-1].out

    if isinstance(model, LeNet5):
        a = x
        for conv, pool in (("c1", "s2"), ("c3", "s4")):
            w, b, mask = conv_weights(getattr(model, conv))
            a = add(conv, "conv", "scaled_tanh", _conv(a, w * mask[:, :, None, None], b))
            sub = getattr(model, pool)
            coef, bias = _np(sub.weight).reshape(-1), _np(sub.bias).reshape(-1)
            avg = _windows2(a).mean(axis=(3, 4))
            a = add(pool, "subsample", "scaled_tanh", avg * 4.0 * coef[:, None, None] + bias[:, None, None])
        w, b, _ = conv_weights(model.c5)
        a = add("c5", "full", "scaled_tanh", _conv(a, w, b))
        flat_act = "scaled_tanh"
    else:  # LeNet5Modern
        a = x
        for conv, pool in (("c1", "s2"), ("c3", "s4")):
            w, b, _ = conv_weights(getattr(model, conv))
            a = add(conv, "conv", "relu", _conv(a, w, b))
            a = add(pool, "maxpool", "none", _windows2(a).max(axis=(3, 4)))
        a = add("c5", "full", "relu", _np(model.c5.weight) @ a.reshape(-1) + _np(model.c5.bias))
        flat_act = "relu"
    a = a.reshape(-1)
    a = add("f6", "full", flat_act, _np(model.f6.weight) @ a + _np(model.f6.bias))
    add("output", "full", "none", _np(model.output.weight) @ a.reshape(-1) + _np(model.output.bias))
    return Trace("lenet5" if isinstance(model, LeNet5) else "lenet5_modern", classes, tuple(stages))


# ------------------------------------------------------------------------------------------------
# one unit


@dataclass(frozen=True)
class ChannelTerm:
    """What one input channel adds to a convolution unit."""

    channel: int  # the input map
    connected: bool  # False: C3's Table I does not connect this map (it adds nothing)
    patch: np.ndarray  # (k, k) the input values under the kernel
    kernel: np.ndarray | None  # (k, k) the weights (None when not connected)
    products: np.ndarray | None  # patch * kernel (None when not connected)
    total: float  # the sum of the products (0 when not connected)


@dataclass(frozen=True)
class ConvUnit:
    layer: str
    channel: int
    y: int
    x: int
    input_layer: str
    terms: tuple[ChannelTerm, ...]  # one per input channel, in order
    bias: float
    total: float  # sum of the connected terms' sums + bias
    activation: str
    value: float  # activation(total)
    kind: str = field(default="conv", init=False)

    @property
    def connected(self) -> list[int]:
        return [t.channel for t in self.terms if t.connected]


@dataclass(frozen=True)
class SubsampleUnit:
    layer: str
    channel: int
    y: int
    x: int
    input_layer: str
    window: np.ndarray  # (2, 2)
    average: float
    coefficient: float  # trainable, per map; the model multiplies the window's sum (4 x average) by it
    bias: float
    total: float  # average * 4 * coefficient + bias
    activation: str
    value: float
    kind: str = field(default="subsample", init=False)


@dataclass(frozen=True)
class MaxPoolUnit:
    layer: str
    channel: int
    y: int
    x: int
    input_layer: str
    window: np.ndarray  # (2, 2)
    argmax: tuple[int, int]  # the winner's place in the window
    value: float
    kind: str = field(default="maxpool", init=False)


@dataclass(frozen=True)
class Contribution:
    index: int  # the input unit's flat index
    name: str  # "S4 map 3 (2, 4)", "C5 unit 17"
    weight: float
    input: float
    product: float


@dataclass(frozen=True)
class FullUnit:
    layer: str
    channel: int  # the unit
    input_layer: str
    top: tuple[Contribution, ...]  # the largest |weight x input| first
    rest_count: int
    rest_sum: float  # the other contributions, summed
    bias: float
    total: float  # every contribution + bias
    activation: str
    value: float
    kind: str = field(default="full", init=False)


@dataclass(frozen=True)
class SoftmaxUnit:
    classes: tuple[str, ...]
    logits: np.ndarray
    shift: float  # subtracted from every logit before exp (0 unless the largest exceeds 700)
    exps: np.ndarray  # exp(logit - shift)
    total: float
    probabilities: np.ndarray  # exps / total
    kind: str = field(default="softmax", init=False)


def _input_name(stage: Stage, index: int) -> str:
    _c, h, w = stage.out.shape
    if h == 1 and w == 1:
        return f"{stage.label} unit {index + 1}"
    ch, rest = divmod(index, h * w)
    return f"{stage.label} map {ch + 1} ({rest // w}, {rest % w})"


def full_unit(stage: Stage, source: Stage, weights: np.ndarray, bias: float, unit: int,
              top: int = TOP_CONTRIBUTIONS) -> FullUnit:
    inputs = source.out.reshape(-1)
    products = weights * inputs
    order = np.argsort(-np.abs(products), kind="stable")
    shown = order[:top]
    total = float(products.sum() + bias)
    rest = order[top:]
    return FullUnit(stage.name, unit, source.name,
                    tuple(Contribution(int(i), _input_name(source, int(i)), float(weights[i]), float(inputs[i]),
                                       float(products[i])) for i in shown),
                    len(rest), float(products[rest].sum()), float(bias), total, stage.activation,
                    float(activate(stage.activation, total)))


def softmax_unit(tr: Trace) -> SoftmaxUnit:
    z = tr.stages[-1].out.reshape(-1)
    shift = float(z.max()) if z.max() > 700 else 0.0  # exp(710) overflows a float64
    e = np.exp(z - shift)
    return SoftmaxUnit(tr.classes, z, shift, e, float(e.sum()), e / e.sum())


def unit_arithmetic(model: nn.Module, tr: Trace, layer: str, channel: int = 0, y: int = 0, x: int = 0):
    """How the unit (``channel``, ``y``, ``x``) of ``layer`` got its value in ``tr``; ``layer`` "softmax"
    gives the :class:`SoftmaxUnit`. Raises IndexError for a unit outside the layer."""
    if layer == "softmax":
        return softmax_unit(tr)
    stage, source = tr.stage(layer), tr.before(layer)
    c, h, w = stage.out.shape
    if not (0 <= channel < c and 0 <= y < h and 0 <= x < w):
        raise IndexError(f"{stage.label} has no map {channel + 1} unit ({y}, {x}): it has {c} maps of {h}x{w}")
    module = getattr(model, layer)
    if stage.kind == "conv":
        weights, bias, mask = conv_weights(module)
        k = weights.shape[-1]
        terms = []
        for ch in range(source.out.shape[0]):
            patch = source.out[ch, y:y + k, x:x + k]
            if mask[channel, ch]:
                kernel = weights[channel, ch]
                prod = patch * kernel
                terms.append(ChannelTerm(ch, True, patch, kernel, prod, float(prod.sum())))
            else:
                terms.append(ChannelTerm(ch, False, patch, None, None, 0.0))
        b = float(bias[channel])
        total = sum(t.total for t in terms if t.connected) + b
        return ConvUnit(layer, channel, y, x, source.name, tuple(terms), b, total, stage.activation,
                        float(activate(stage.activation, total)))
    if stage.kind == "subsample":
        window = source.out[channel, 2 * y:2 * y + 2, 2 * x:2 * x + 2]
        coef = float(module.weight.detach().reshape(-1)[channel])
        b = float(module.bias.detach().reshape(-1)[channel])
        avg = float(window.mean())
        total = avg * 4.0 * coef + b
        return SubsampleUnit(layer, channel, y, x, source.name, window, avg, coef, b, total, stage.activation,
                             float(activate(stage.activation, total)))
    if stage.kind == "maxpool":
        window = source.out[channel, 2 * y:2 * y + 2, 2 * x:2 * x + 2]
        i = int(np.argmax(window))
        return MaxPoolUnit(layer, channel, y, x, source.name, window, divmod(i, 2), float(window.max()))
    weights = _np(module.weight).reshape(c, -1)[channel]
    return full_unit(stage, source, weights, float(_np(module.bias)[channel]), channel)


def reads(tr: Trace, model: nn.Module, layer: str, channel: int, y: int = 0, x: int = 0
          ) -> list[tuple[int, int, int, int, int]]:
    """The input units a unit reads, as rectangles (input channel, y0, x0, height, width) in the stage
    before it (for a full connection: every input map whole). C3 lists only the maps Table I connects."""
    stage, source = tr.stage(layer), tr.before(layer)
    sc, sh, sw = source.out.shape
    if stage.kind == "conv":
        weights, _bias, mask = conv_weights(getattr(model, layer))
        k = weights.shape[-1]
        return [(ch, y, x, k, k) for ch in range(sc) if mask[channel, ch]]
    if stage.kind in ("subsample", "maxpool"):
        return [(channel, 2 * y, 2 * x, 2, 2)]
    return [(ch, 0, 0, sh, sw) for ch in range(sc)]


def with_weights(model: nn.Module, state: dict) -> nn.Module:
    """A copy of ``model`` holding ``state`` (e.g. the first saved epoch's weights), in eval mode;
    raises ValueError when the weights do not fit the model."""
    import copy

    other = copy.deepcopy(model).cpu()
    try:
        other.load_state_dict(state, strict=True)
    except RuntimeError:
        raise ValueError("the first epoch's weights kept in the model file do not fit this model") from None
    return other.eval()
