"""core.inference.unit_arithmetic: every number the explainer shows, checked against PyTorch's forward pass.

The reference is the model's own forward pass read through forward hooks; the arithmetic is rebuilt
from the weights in NumPy by the module under test. 1e-5 is the float32 forward pass's own rounding.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from catdog_gui.core.inference.unit_arithmetic import (
    ConvUnit,
    FullUnit,
    MaxPoolUnit,
    SoftmaxUnit,
    SubsampleUnit,
    activate,
    is_explainable,
    reads,
    trace,
    unit_arithmetic,
)
from catdog_gui.core.models import create_model

TOL = 1e-5

#: module whose output is each stage's volume before / after its activation
_HOOKS = {
    "lenet5": {"c1": ("c1", "act1"), "s2": ("s2", "act2"), "c3": ("c3", "act3"), "s4": ("s4", "act4"),
               "c5": ("c5", "act5"), "f6": ("f6", "act6"), "output": ("output", "output")},
    "lenet5_modern": {"c1": ("c1", "act1"), "s2": ("s2", "s2"), "c3": ("c3", "act3"), "s4": ("s4", "s4"),
                      "c5": ("c5", "act5"), "f6": ("f6", "act6"), "output": ("output", "output")},
}


def _model(name: str, size: int, seed: int = 0):
    """A LeNet-5 whose every parameter is far from its initial value (biases and the subsampling
    coefficients included), so a dropped bias or a misread coefficient changes the numbers."""
    torch.manual_seed(seed)
    model = create_model(name, 3, size)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith("bias"):
                p.copy_(torch.randn_like(p) * 0.5)
            elif n.startswith(("s2", "s4")):
                p.copy_(torch.rand_like(p) * 0.8 + 0.2)
            else:
                p.mul_(1.5)
    return model.eval()


def _hooked(model, name: str, x: torch.Tensor) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """layer -> (before activation, after) from PyTorch's forward pass, float64 (C, H, W)."""
    modules = dict(model.named_modules())
    got: dict[str, np.ndarray] = {}
    handles = []
    for mod_name in {m for pair in _HOOKS[name].values() for m in pair}:
        def hook(_m, _i, y, mod_name=mod_name):
            got[mod_name] = y[0].detach().double().numpy()
        handles.append(modules[mod_name].register_forward_hook(hook))
    with torch.no_grad():
        logits = model(x[None])
    for h in handles:
        h.remove()
    out = {}
    for layer, (pre, post) in _HOOKS[name].items():
        a, b = got[pre], got[post]
        out[layer] = (a.reshape(a.shape[0], -1, a.shape[-1]) if a.ndim == 3 else a.reshape(-1, 1, 1),
                      b.reshape(b.shape[0], -1, b.shape[-1]) if b.ndim == 3 else b.reshape(-1, 1, 1))
    out["logits"] = (logits[0].double().numpy(), None)
    return out


CASES = [("lenet5", 32), ("lenet5_modern", 40)]


@pytest.fixture(params=CASES, ids=[c[0] for c in CASES])
def case(request):
    name, size = request.param
    model = _model(name, size)
    x = torch.randn(3, size, size, generator=torch.Generator().manual_seed(1))
    return name, model, x, trace(model, x, ("cat", "dog", "fox")), _hooked(model, name, x)


def test_every_volume_matches_the_forward_pass(case):
    _name, _m, _x, tr, ref = case
    assert [s.name for s in tr.stages] == ["input", "c1", "s2", "c3", "s4", "c5", "f6", "output"]
    for stage in tr.stages[1:]:
        pre, post = ref[stage.name]
        assert stage.pre.shape == pre.shape, stage.name
        assert np.abs(stage.pre - pre).max() < TOL, stage.name
        assert np.abs(stage.out - post).max() < TOL, stage.name
    assert np.abs(tr.logits - ref["logits"][0]).max() < TOL


def _units(tr, layer):
    """A spread of units of a layer: the corners, the middle and a few in between."""
    c, h, w = tr.stage(layer).out.shape
    picks = {(0, 0, 0), (c - 1, h - 1, w - 1), (c // 2, h // 2, w // 3), (min(2, c - 1), h - 1, 0),
             (c - 1, 0, w - 1)}
    return sorted(picks)


def _check_conv(u: ConvUnit, model, tr, want: float):
    source = tr.before(u.layer).out
    weights = getattr(model, u.layer).weight.detach().double().numpy()
    k = weights.shape[-1]
    for t in u.terms:
        # the patch is the input under the kernel, read from the previous layer's output
        assert np.array_equal(t.patch, source[t.channel, u.y:u.y + k, u.x:u.x + k])
        if t.connected:
            assert np.array_equal(t.kernel, weights[u.channel, t.channel])
            assert np.allclose(t.products, t.patch * t.kernel, rtol=0, atol=1e-12)
            assert abs(t.total - t.products.sum()) < 1e-9
    shown = sum(t.products.sum() for t in u.terms if t.connected) + u.bias
    assert abs(u.total - shown) < 1e-9
    assert abs(float(activate(u.activation, shown)) - want) < TOL
    assert abs(u.value - want) < TOL


def test_every_unit_adds_up_to_the_forward_pass(case):
    name, model, _x, tr, ref = case
    kinds = set()
    for layer in ("c1", "s2", "c3", "s4", "c5", "f6", "output"):
        for (c, y, x) in _units(tr, layer):
            u = unit_arithmetic(model, tr, layer, c, y, x)
            want = ref[layer][1][c, y, x]
            kinds.add(type(u).__name__)
            if isinstance(u, ConvUnit):
                _check_conv(u, model, tr, want)
            elif isinstance(u, SubsampleUnit):
                src = tr.before(layer).out[c, 2 * y:2 * y + 2, 2 * x:2 * x + 2]
                assert np.array_equal(u.window, src)
                assert abs(u.average - src.mean()) < 1e-12
                assert abs(u.coefficient - float(getattr(model, layer).weight.detach().reshape(-1)[c])) < 1e-12
                assert abs(u.bias - float(getattr(model, layer).bias.detach().reshape(-1)[c])) < 1e-12
                total = u.average * 4 * u.coefficient + u.bias
                assert abs(ref[layer][0][c, y, x] - total) < TOL
                assert abs(float(activate(u.activation, total)) - want) < TOL
                assert abs(u.value - want) < TOL
            elif isinstance(u, MaxPoolUnit):
                src = tr.before(layer).out[c, 2 * y:2 * y + 2, 2 * x:2 * x + 2]
                assert np.array_equal(u.window, src)
                assert u.window[u.argmax] == u.window.max()
                assert abs(u.value - want) < TOL
            else:
                assert isinstance(u, FullUnit)
                products = [t.product for t in u.top]
                assert products == sorted(products, key=abs, reverse=True)
                for t in u.top:
                    assert abs(t.weight * t.input - t.product) < 1e-12
                    assert t.input == tr.before(layer).out.reshape(-1)[t.index]
                assert len(u.top) + u.rest_count == tr.before(layer).out.size
                every = (getattr(model, layer).weight.detach().double().numpy().reshape(
                         tr.stage(layer).out.shape[0], -1)[c] * tr.before(layer).out.reshape(-1))
                assert abs(every.sum() - sum(products) - u.rest_sum) < 1e-9
                # the bars are the largest contributions of all, whatever their sign
                assert min(abs(p) for p in products) >= np.sort(np.abs(every))[-len(products)] - 1e-12
                shown = sum(products) + u.rest_sum + u.bias
                assert abs(shown - u.total) < 1e-9
                assert abs(ref[layer][0][c, y, x] - shown) < TOL
                assert abs(float(activate(u.activation, shown)) - want) < TOL
                assert abs(u.value - want) < TOL
    expected = {"ConvUnit", "FullUnit"} | ({"SubsampleUnit"} if name == "lenet5" else {"MaxPoolUnit"})
    assert kinds == expected


def test_c3_unit_reads_only_its_table_i_maps():
    model = _model("lenet5", 32)
    with torch.no_grad():  # weights stored where Table I has no connection: the forward pass ignores them
        model.c3.weight.add_((1 - model.c3.mask) * 5.0)
    x = torch.randn(3, 32, 32, generator=torch.Generator().manual_seed(2))
    tr, ref = trace(model, x), _hooked(model, "lenet5", x)
    # C3 map 1 reads S2 maps 0, 1, 2 only (the first column of Table I); map 7 reads 1, 2, 3, 4
    for ch, connected in ((0, [0, 1, 2]), (7, [1, 2, 3, 4]), (15, [0, 1, 2, 3, 4, 5])):
        u = unit_arithmetic(model, tr, "c3", ch, 3, 6)
        assert u.connected == connected
        assert all(t.kernel is None and t.products is None and t.total == 0 for t in u.terms if not t.connected)
        assert len(u.terms) == 6
        _check_conv(u, model, tr, ref["c3"][1][ch, 3, 6])
        assert [r[0] for r in reads(tr, model, "c3", ch, 3, 6)] == connected


def test_softmax_is_the_exponentials_over_their_sum(case):
    _name, model, _x, tr, ref = case
    u = unit_arithmetic(model, tr, "softmax")
    assert isinstance(u, SoftmaxUnit) and u.classes == ("cat", "dog", "fox")
    assert np.abs(u.logits - ref["logits"][0]).max() < TOL
    assert np.allclose(u.exps, np.exp(u.logits - u.shift), rtol=1e-12)
    assert abs(u.total - u.exps.sum()) < 1e-9
    torch_p = torch.softmax(torch.as_tensor(ref["logits"][0]), 0).numpy()
    assert np.abs(u.probabilities - torch_p).max() < TOL
    assert np.allclose(u.probabilities * u.total, u.exps)


def test_softmax_survives_huge_logits():
    model = _model("lenet5", 32)
    with torch.no_grad():
        model.output.bias.copy_(torch.tensor([800.0, 790.0, 0.0]))
    tr = trace(model, torch.zeros(3, 32, 32))
    u = unit_arithmetic(model, tr, "softmax")
    assert u.shift > 700 and np.isfinite(u.exps).all()
    want = torch.softmax(torch.as_tensor(tr.logits), 0).numpy()
    assert np.abs(u.probabilities - want).max() < TOL


def test_reads_and_bad_units():
    model = _model("lenet5", 32)
    tr = trace(model, torch.zeros(3, 32, 32))
    assert reads(tr, model, "c1", 2, 4, 5) == [(0, 4, 5, 5, 5), (1, 4, 5, 5, 5), (2, 4, 5, 5, 5)]
    assert reads(tr, model, "s2", 3, 6, 1) == [(3, 12, 2, 2, 2)]
    assert reads(tr, model, "f6", 0) == [(c, 0, 0, 1, 1) for c in range(120)]
    with pytest.raises(IndexError, match="6 maps of 28x28"):
        unit_arithmetic(model, tr, "c1", 6, 0, 0)
    with pytest.raises(KeyError):
        unit_arithmetic(model, tr, "c9")


def test_only_lenets_are_taken_apart():
    assert is_explainable(create_model("lenet5", 2))
    other = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 2))
    assert not is_explainable(other)
    with pytest.raises(ValueError, match="LeNet-5"):
        trace(other, torch.zeros(3, 2, 2))
