"""BatchAugmenter, preview and AugmentSettings: each transform on/off, per-sample randomness, seeds."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from PIL import Image

from catdog_gui.core.data.augment import AugmentSettings, BatchAugmenter, preview
from catdog_gui.core.errors import CatdogError

SIZE = 32

#: every transform off, augmentation enabled
OFF = dict(
    enabled=True, crop_scale_min=1.0, hflip=False, vflip=False, rotation=0.0, brightness=0.0,
    contrast=0.0, saturation=0.0, hue=0.0, channel_shift=0.0, blur=0.0, noise=0.0,
)

#: (field, value that turns it on)
ON = [
    ("crop_scale_min", 0.5),
    ("hflip", True),
    ("vflip", True),
    ("rotation", 30.0),
    ("brightness", 0.5),
    ("contrast", 0.5),
    ("saturation", 0.5),
    ("hue", 0.2),
    ("channel_shift", 0.2),
    ("blur", 1.5),
    ("noise", 0.1),
]


def only(**kw) -> AugmentSettings:
    return AugmentSettings(**{**OFF, **kw})


def pattern(n: int = 4, size: int = SIZE) -> torch.Tensor:
    """Colourful, asymmetric, structured images: gradients + a bright block in one corner."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    img = torch.stack([
        0.15 + 0.6 * xx,
        0.2 + 0.5 * yy,
        0.5 + 0.3 * torch.sin(xx * 7 + yy * 3),
    ])
    img[:, : size // 4, : size // 3] = torch.tensor([0.9, 0.3, 0.1]).view(3, 1, 1)
    return img.unsqueeze(0).repeat(n, 1, 1, 1).contiguous()


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------- each transform on / off
@pytest.mark.parametrize("name,value", ON, ids=[n for n, _ in ON])
def test_transform_on_changes_image(name, value):
    x = pattern(8)
    y = BatchAugmenter(only(**{name: value}), SIZE)(x, gen(1))
    diffs = (y - x).abs().flatten(1).amax(dim=1)
    assert diffs.max() > 0.02, f"{name} did not change any sample"
    assert torch.equal(x, pattern(8)), "input batch modified in place"


def test_everything_off_is_identity():
    x = pattern(8)
    y = BatchAugmenter(only(), SIZE)(x, gen(1))
    assert torch.allclose(y, x, atol=1e-6)


@pytest.mark.parametrize("name,value", ON, ids=[n for n, _ in ON])
def test_disabled_ignores_strengths(name, value):
    x = pattern(4)
    s = AugmentSettings(**{**OFF, name: value, "enabled": False})
    assert torch.equal(BatchAugmenter(s, SIZE)(x, gen(1)), x)


def test_disabled_with_defaults_is_identity():
    x = pattern(4)
    assert torch.equal(BatchAugmenter(AugmentSettings(enabled=False), SIZE)(x), x)


def test_disabled_still_resizes():
    x = pattern(3, size=48)
    y = BatchAugmenter(AugmentSettings(enabled=False), SIZE)(x)
    assert y.shape == (3, 3, SIZE, SIZE)
    assert y.min() >= 0 and y.max() <= 1


def test_hflip_gives_exact_mirrors_for_some_samples_only():
    x = pattern(32)
    y = BatchAugmenter(only(hflip=True), SIZE)(x, gen(3))
    flipped = [torch.allclose(y[i], x[i].flip(-1), atol=1e-5) for i in range(32)]
    same = [torch.allclose(y[i], x[i], atol=1e-5) for i in range(32)]
    assert all(f or s for f, s in zip(flipped, same))
    assert 4 <= sum(flipped) <= 28 and 4 <= sum(same) <= 28


def test_vflip_gives_exact_upside_down_for_some_samples():
    x = pattern(32)
    y = BatchAugmenter(only(vflip=True), SIZE)(x, gen(3))
    flipped = sum(torch.allclose(y[i], x[i].flip(-2), atol=1e-5) for i in range(32))
    same = sum(torch.allclose(y[i], x[i], atol=1e-5) for i in range(32))
    assert flipped + same == 32 and flipped > 0 and same > 0


def test_brightness_scales_pixels():
    x = pattern(8) * 0.5  # no clipping at 1
    y = BatchAugmenter(only(brightness=0.4), SIZE)(x, gen(0))
    ratio = y.flatten(1).sum(1) / x.flatten(1).sum(1)
    assert ((ratio > 0.6 - 1e-4) & (ratio < 1.4 + 1e-4)).all()
    assert ratio.std() > 0.01


def test_saturation_zero_factor_range_keeps_grey_grey():
    grey = torch.full((4, 3, SIZE, SIZE), 0.4)
    y = BatchAugmenter(only(saturation=0.9, hue=0.3), SIZE)(grey, gen(0))
    assert torch.allclose(y, grey, atol=1e-5)


def _luma(t: torch.Tensor) -> torch.Tensor:
    return 0.299 * t[:, 0] + 0.587 * t[:, 1] + 0.114 * t[:, 2]


def _mid() -> torch.Tensor:
    """Muted colours well inside the RGB cube: no clipping for moderate changes."""
    return pattern(8) * 0.4 + 0.3


@pytest.mark.parametrize("name", ["saturation", "hue"])
def test_saturation_and_hue_keep_luma(name):
    x = _mid()
    y = BatchAugmenter(only(**{name: 0.3 if name == "saturation" else 0.05}), SIZE)(x, gen(0))
    assert torch.allclose(_luma(y), _luma(x), atol=1e-4)
    assert (y - x).abs().amax() > 0.01


def test_contrast_keeps_mean_grey_and_scales_spread():
    x = _mid()
    y = BatchAugmenter(only(contrast=0.3), SIZE)(x, gen(0))
    assert torch.allclose(_luma(y).mean(dim=(1, 2)), _luma(x).mean(dim=(1, 2)), atol=1e-4)
    ratio = y.flatten(1).std(1) / x.flatten(1).std(1)
    assert ((ratio > 0.7 - 1e-4) & (ratio < 1.3 + 1e-4)).all() and ratio.std() > 0.01


def test_hue_turns_red_towards_yellow_or_magenta():
    red = torch.tensor([0.7, 0.25, 0.25]).view(1, 3, 1, 1).repeat(16, 1, 4, 4)
    y = BatchAugmenter(only(hue=0.08), 4)(red, gen(0))[:, :, 0, 0]
    assert (y[:, 0] > y[:, 1:].max(dim=1).values).all()  # still reddish
    greener, bluer = y[:, 1] > y[:, 2] + 0.01, y[:, 2] > y[:, 1] + 0.01
    assert greener.sum() >= 3 and bluer.sum() >= 3 and not (greener & bluer).any()


def test_colour_ops_commute_with_flip():
    """Colour parameters do not depend on the geometry (same seed, with and without a flip)."""
    x = _mid()
    s = dict(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.05, channel_shift=0.05)
    a = BatchAugmenter(only(hflip=True, **s), SIZE)(x, gen(9))
    b = BatchAugmenter(only(**s), SIZE)(x, gen(9))
    for i in range(len(x)):
        assert torch.allclose(a[i], b[i], atol=1e-5) or torch.allclose(a[i], b[i].flip(-1), atol=1e-5)


def test_channel_shift_is_a_constant_per_channel():
    x = pattern(4) * 0.5 + 0.25  # room either way
    y = BatchAugmenter(only(channel_shift=0.1), SIZE)(x, gen(0))
    d = (y - x).flatten(2)
    assert torch.allclose(d, d[:, :, :1].expand_as(d), atol=1e-5)
    assert d[:, :, 0].abs().max() <= 0.1 + 1e-6


def test_blur_smooths_and_keeps_mean():
    x = torch.rand(4, 3, SIZE, SIZE, generator=gen(2))
    y = BatchAugmenter(only(blur=2.0), SIZE)(x, gen(0))
    tv = lambda t: (t[..., 1:, :] - t[..., :-1, :]).abs().mean()  # noqa: E731
    assert tv(y) < tv(x)
    assert torch.allclose(y.mean(dim=(2, 3)), x.mean(dim=(2, 3)), atol=0.02)


def test_noise_is_zero_mean():
    x = torch.full((8, 3, SIZE, SIZE), 0.5)
    y = BatchAugmenter(only(noise=0.1), SIZE)(x, gen(0))
    assert abs(float((y - x).mean())) < 0.01
    assert float((y - x).std()) > 0.01


# ---------------------------------------------------------------------- randomness
ALL_ON = AugmentSettings(
    enabled=True, crop_scale_min=0.5, hflip=True, vflip=True, rotation=20, brightness=0.3, contrast=0.3,
    saturation=0.3, hue=0.1, channel_shift=0.1, blur=1.0, noise=0.05,
)


@pytest.mark.parametrize("settings", [ALL_ON, only(crop_scale_min=0.5), only(rotation=30.0), only(hue=0.2),
                                      only(brightness=0.5), only(blur=1.5)],
                         ids=["all", "crop", "rotation", "hue", "brightness", "blur"])
def test_each_sample_gets_its_own_parameters(settings):
    x = pattern(8)  # 8 identical inputs
    y = BatchAugmenter(settings, SIZE)(x, gen(0))
    distinct = {tuple(y[i].flatten()[::37].tolist()) for i in range(8)}
    assert len(distinct) == 8


def test_same_seed_same_output_other_seed_differs():
    x = pattern(8)
    aug = BatchAugmenter(ALL_ON, SIZE)
    a, b, c = aug(x, gen(7)), aug(x, gen(7)), aug(x, gen(8))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_generator_state_advances_between_batches():
    x = pattern(4)
    aug, g = BatchAugmenter(ALL_ON, SIZE), gen(0)
    assert not torch.allclose(aug(x, g), aug(x, g))


def test_no_generator_uses_global_rng():
    x = pattern(4)
    aug = BatchAugmenter(ALL_ON, SIZE)
    torch.manual_seed(3)
    a = aug(x)
    torch.manual_seed(3)
    assert torch.equal(a, aug(x))


def test_turning_one_transform_off_keeps_the_others_parameters():
    x = pattern(6)
    with_flip = BatchAugmenter(only(hflip=True, brightness=0.5), SIZE)(x, gen(4))
    without_flip = BatchAugmenter(only(brightness=0.5), SIZE)(x, gen(4))
    for i in range(6):
        a, b = with_flip[i], without_flip[i]
        assert torch.allclose(a, b, atol=1e-5) or torch.allclose(a, b.flip(-1), atol=1e-5)


# ---------------------------------------------------------------------- shapes, dtypes, devices
@pytest.mark.parametrize("in_size,out_size", [(32, 32), (48, 32), (32, 24), (200, 32)])
def test_output_shape_dtype_range(in_size, out_size):
    x = torch.rand(5, 3, in_size, in_size, generator=gen(0))
    y = BatchAugmenter(ALL_ON, out_size)(x, gen(0))
    assert y.shape == (5, 3, out_size, out_size)
    assert y.dtype == torch.float32 and y.device == x.device
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    assert torch.isfinite(y).all()


def test_uint8_batch_is_accepted():
    x = (pattern(2) * 255).round().to(torch.uint8)
    y = BatchAugmenter(only(hflip=True), SIZE)(x, gen(0))
    assert y.dtype == torch.float32 and float(y.max()) <= 1.0


def test_empty_batch():
    y = BatchAugmenter(ALL_ON, SIZE)(torch.zeros(0, 3, SIZE, SIZE), gen(0))
    assert y.shape == (0, 3, SIZE, SIZE)


def test_bad_shape_is_rejected():
    with pytest.raises(ValueError):
        BatchAugmenter(ALL_ON, SIZE)(torch.zeros(3, SIZE, SIZE))


def test_invalid_settings_rejected_by_augmenter():
    with pytest.raises(CatdogError, match="hue"):
        BatchAugmenter(AugmentSettings(enabled=True, hue=0.7), SIZE)


def test_every_tensor_stays_on_the_batch_device():
    """Runs on this machine without a GPU: PyTorch's meta device stands in for CUDA, and any CPU tensor
    the augmenter makes and forgets to move to the batch's device raises there."""
    x = pattern(8).to("meta")
    y = BatchAugmenter(ALL_ON, SIZE)(x, gen(11))
    assert y.device.type == "meta" and y.shape == x.shape and y.dtype == x.dtype


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (tests/benchmarks/gpu_smoke.sh runs it)")
def test_cuda_matches_cpu():
    x = pattern(8)
    cpu = BatchAugmenter(ALL_ON, SIZE)(x, gen(11))
    gpu = BatchAugmenter(ALL_ON, SIZE)(x.cuda(), gen(11))
    assert gpu.device.type == "cuda"
    assert torch.allclose(gpu.cpu(), cpu, atol=1e-3)


def test_large_batch_with_everything_on_runs():
    x = torch.rand(64, 3, SIZE, SIZE, generator=gen(0))
    y = BatchAugmenter(ALL_ON, SIZE)(x, gen(0))
    assert y.shape == x.shape
    y = BatchAugmenter(AugmentSettings(enabled=True), SIZE)(x, gen(0))  # the defaults
    assert y.shape == x.shape and not torch.allclose(y, x)


# ---------------------------------------------------------------------- preview
def _photo() -> Image.Image:
    arr = (pattern(1, size=80)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    return Image.fromarray(arr[:, :60], "RGB")  # not square: preview crops it like training


def _png_bytes(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def test_preview_count_size_and_determinism(tmp_path):
    path = tmp_path / "photo.png"
    _photo().save(path)
    ims = preview(path, ALL_ON, n=5, seed=3, size=40)
    assert len(ims) == 5
    assert all(isinstance(im, Image.Image) and im.size == (40, 40) and im.mode == "RGB" for im in ims)
    again = preview(str(path), ALL_ON, n=5, seed=3, size=40)
    assert [np.asarray(a).tolist() == np.asarray(b).tolist() for a, b in zip(ims, again)] == [True] * 5
    other = preview(_png_bytes(_photo()), ALL_ON, n=5, seed=4, size=40)
    assert any(not np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(ims, other))
    assert len({np.asarray(im).tobytes() for im in ims}) == 5


def test_preview_disabled_returns_the_training_view():
    from catdog_gui.core.data.imageio import load_square_array

    im = _photo()
    ims = preview(im, AugmentSettings(enabled=False), n=3, size=24)
    want = load_square_array(im, 24)
    assert len(ims) == 3
    for p in ims:
        assert np.array_equal(np.asarray(p), want)


def test_preview_zero_and_bad_image():
    assert preview(_photo(), ALL_ON, n=0) == []
    with pytest.raises(CatdogError):
        preview(b"not an image", ALL_ON)


# ---------------------------------------------------------------------- settings
def test_to_dict_from_dict_round_trip():
    s = AugmentSettings(enabled=True, crop_scale_min=0.7, vflip=True, hue=0.1, blur=0.5, noise=0.02)
    d = s.to_dict()
    assert set(d) == {"enabled", "crop_scale_min", "hflip", "vflip", "rotation", "brightness", "contrast",
                      "saturation", "hue", "channel_shift", "blur", "noise"}
    assert AugmentSettings.from_dict(d) == s
    assert AugmentSettings.from_dict({**d, "from_the_future": 1}) == s
    assert AugmentSettings.from_dict(None) == AugmentSettings()
    assert AugmentSettings.from_dict({"enabled": True}) == AugmentSettings(enabled=True)


def test_defaults_are_valid():
    assert AugmentSettings().validate() == AugmentSettings()
    AugmentSettings(enabled=True).validate()
    only().validate()
    ALL_ON.validate()


@pytest.mark.parametrize("field,value", [
    ("crop_scale_min", 0.0), ("crop_scale_min", 1.2), ("crop_scale_min", -0.5),
    ("hue", 0.6), ("hue", -0.1), ("rotation", -5.0), ("rotation", 270.0),
    ("brightness", -0.1), ("contrast", -1.0), ("saturation", 1.5), ("channel_shift", -0.01),
    ("blur", -1.0), ("blur", 50.0), ("noise", -0.1), ("noise", 2.0),
    ("hue", math.nan), ("rotation", math.inf), ("brightness", "0.2"), ("noise", None),
    ("enabled", "yes"), ("hflip", 1),
])
def test_validate_names_the_bad_field(field, value):
    s = AugmentSettings(**{field: value})
    with pytest.raises(CatdogError, match=field):
        s.validate()


def test_validate_accepts_edges():
    AugmentSettings(crop_scale_min=1.0, hue=0.5, rotation=180, brightness=0, noise=0, blur=0).validate()
    AugmentSettings(crop_scale_min=0.01, rotation=0, brightness=1, contrast=1, saturation=1).validate()
    AugmentSettings(rotation=15).validate()  # ints are fine for floats


def test_recommended_epochs():
    assert AugmentSettings(enabled=False).recommended_epochs(30, 8) == (30, 8)
    epochs, patience = AugmentSettings(enabled=True).recommended_epochs(30, 8)
    assert epochs > 30 and patience >= 8 and patience <= epochs
    assert AugmentSettings(enabled=True).recommended_epochs(30, 0)[1] == 0  # early stopping stays off
    assert AugmentSettings(enabled=True).recommended_epochs(1, 1)[0] >= 1
