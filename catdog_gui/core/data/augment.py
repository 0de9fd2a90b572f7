"""Data augmentation: settings, batched GPU-friendly transforms, and previews.

(The settings dataclass is the contract shared by TrainConfig, the CLI, the GUI and the model file.)

:class:`BatchAugmenter` transforms a whole batch at once on the batch's own device, with its OWN
random parameters for every sample (``torchvision.transforms.v2`` on a batched tensor would draw one
set for the whole batch). The geometric part (random resized crop, flips, rotation) is a single
per-sample affine warp (an ``affine_grid``-style grid + ``grid_sample``, bilinear, reflection
padding); the colour part (brightness, contrast, saturation, hue, channel shift) is a single
per-sample affine map of RGB (3x3 matrix + offset, one batched product); blur is one depthwise
convolution with a per-sample Gaussian kernel; noise is additive. A batch of 32 images of 32x32
at the default settings takes about 1.3 ms on one CPU thread.

Random parameters are always drawn on the CPU from the (CPU) generator and then moved to the batch's
device, so a seed gives the same pictures on CPU and on CUDA (up to float rounding). A fixed block of
parameters is drawn per sample whatever the settings are, so turning one transform on or off does not
change what the others do with the same seed (previews stay comparable while a user edits them).

Torch is imported lazily: ``AugmentSettings`` alone stays cheap to import (the GUI paints first).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Union

from ..errors import CatdogError

if TYPE_CHECKING:  # pragma: no cover
    import os

    import torch
    from PIL import Image


@dataclass
class AugmentSettings:
    """What random changes training applies to each photo, and how strong they are.

    The defaults were chosen by measurement (``tests/benchmarks/bench_augment.py``, LeNet-5 at
    32x32 on 1,800 cats and dogs, 3 seeds): geometry (crops, mirror, small turns) is what helps;
    stronger colour changes (saturation, hue, colour cast) did not help and cost a little accuracy,
    so they are off by default and brightness/contrast are mild. Augmented training needs more
    epochs (see :meth:`recommended_epochs`).
    """

    enabled: bool = False
    crop_scale_min: float = 0.6     # random resized crop: smallest area fraction kept (1.0 = off)
    hflip: bool = True              # random horizontal flip (p=0.5)
    vflip: bool = False             # random vertical flip (p=0.5)
    rotation: float = 10.0          # max degrees either way (0 = off)
    brightness: float = 0.1         # factor range 1 +- brightness (0 = off)
    contrast: float = 0.1
    saturation: float = 0.0
    hue: float = 0.0                # fraction of the colour wheel, <= 0.5
    channel_shift: float = 0.0      # per-channel additive RGB shift, fraction of full scale
    blur: float = 0.0               # max Gaussian sigma in pixels at the model's input size
    noise: float = 0.0              # max std of additive Gaussian noise, fraction of full scale

    #: augmented training learns more slowly: epochs and early-stopping patience to use instead of
    #: the plain ones (measured: LeNet-5 gains +1 point after 60 epochs, +5 after 120; its
    #: validation accuracy plateaus for 30-40 epochs before rising again)
    EPOCHS_FACTOR = 4
    PATIENCE_FRACTION = 1 / 3

    def recommended_epochs(self, epochs: int, patience: int) -> tuple[int, int]:
        """(epochs, patience) for a run with these settings, given the plain run's choice.

        Unchanged when augmentation is off. Otherwise ``EPOCHS_FACTOR`` times the epochs, and a
        patience of at least a third of them (0, early stopping off, stays 0): 30/8 -> 120/40.
        """
        if not self.enabled:
            return epochs, patience
        epochs = max(1, int(epochs)) * self.EPOCHS_FACTOR
        if patience:
            patience = max(int(patience), round(epochs * self.PATIENCE_FRACTION))
        return epochs, patience

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> "AugmentSettings":
        d = d or {}
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    # ------------------------------------------------------------------ validation
    #: (lowest, highest, lowest excluded) per numeric field
    _RANGES = {
        "crop_scale_min": (0.0, 1.0, True),
        "rotation": (0.0, 180.0, False),
        "brightness": (0.0, 1.0, False),
        "contrast": (0.0, 1.0, False),
        "saturation": (0.0, 1.0, False),
        "hue": (0.0, 0.5, False),
        "channel_shift": (0.0, 1.0, False),
        "blur": (0.0, 10.0, False),
        "noise": (0.0, 1.0, False),
    }
    _FLAGS = ("enabled", "hflip", "vflip")

    def validate(self) -> "AugmentSettings":
        """Raise :class:`CatdogError` naming the field if a value is out of range; else return self."""
        for name in self._FLAGS:
            v = getattr(self, name)
            if not isinstance(v, bool):
                raise CatdogError(f"augmentation setting '{name}' must be true or false, not {v!r}")
        for name, (lo, hi, lo_open) in self._RANGES.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise CatdogError(f"augmentation setting '{name}' must be a number, not {v!r}")
            ok = (lo < v <= hi) if lo_open else (lo <= v <= hi)  # also False for NaN
            if not ok:
                where = f"{'above' if lo_open else 'from'} {lo:g} {'up to' if lo_open else 'to'} {hi:g}"
                raise CatdogError(f"augmentation setting '{name}' is {v!r}; it must be {where}")
        return self

    @property
    def geometric(self) -> bool:
        """True when any geometric transform is on (crop, flips, rotation)."""
        return self.crop_scale_min < 1.0 or self.hflip or self.vflip or self.rotation > 0


# parameter slots drawn for every sample (always all of them: see the module docstring)
_SCALE, _RATIO, _CX, _CY, _HFLIP, _VFLIP, _ANGLE = range(7)
_BRIGHT, _CONTRAST, _SAT, _HUE, _SHIFT_R, _SHIFT_G, _SHIFT_B, _BLUR, _NOISE = range(7, 16)
_NUM_PARAMS = 16

_GRAY = (0.299, 0.587, 0.114)  # ITU-R 601 luma, as torchvision's rgb_to_grayscale


def _yiq():
    import torch

    to = torch.tensor([[0.299, 0.587, 0.114],
                       [0.595716, -0.274453, -0.321263],
                       [0.211456, -0.522591, 0.311135]], dtype=torch.float64)
    return to, torch.linalg.inv(to)


class BatchAugmenter:
    """Random per-sample augmentation of a float batch (N, 3, H, W) in [0, 1], on its own device.

    ``out_size`` is the model's input size; the batch is resampled to (N, 3, out_size, out_size)
    (usually the cache already has that size). With ``settings.enabled`` False the batch is only
    resized when needed (and returned as is otherwise).
    """

    def __init__(self, settings: AugmentSettings, out_size: int):
        settings.validate()
        if int(out_size) < 1:
            raise ValueError(f"out_size must be positive, got {out_size}")
        self.settings = settings
        self.out_size = int(out_size)

    def __repr__(self) -> str:
        return f"BatchAugmenter({self.settings!r}, out_size={self.out_size})"

    # ------------------------------------------------------------------ entry point
    def __call__(self, x: "torch.Tensor", generator: "torch.Generator | None" = None) -> "torch.Tensor":
        import torch

        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected a batch (N, 3, H, W), got shape {tuple(x.shape)}")
        if x.dtype == torch.uint8:
            x = x.float().div_(255.0)
        elif x.dtype != torch.float32:
            x = x.float()
        s = self.settings
        n, _, h, w = x.shape
        size = self.out_size

        if not s.enabled or n == 0:
            if (h, w) == (size, size):
                return x
            return self._resize(x)

        u = torch.rand(n, _NUM_PARAMS, generator=generator, dtype=torch.float64)

        src = x
        if s.geometric:
            x = self._geometry(x, u)
        elif (h, w) != (size, size):
            x = self._resize(x)
        colour = self._colour_matrix(x, u)
        if colour is not None:  # one per-sample affine map of RGB: (N,3,3) @ (N,3,HW) + (N,3,1)
            m, b = colour
            x = torch.baddbmm(b, m, x.reshape(n, 3, -1)).view(n, 3, size, size).clamp_(0.0, 1.0)
        if s.blur > 0:
            x = self._blur(x, u[:, _BLUR] * s.blur)
        if s.noise > 0:
            std = (u[:, _NOISE] * s.noise).float().view(n, 1, 1, 1)
            noise = torch.randn(x.shape, generator=generator, dtype=torch.float32).mul_(std).to(x.device)
            x = x + noise
        # never modify the caller's batch in place
        return x.clamp(0.0, 1.0) if x is src else x.clamp_(0.0, 1.0)

    def _resize(self, x: "torch.Tensor") -> "torch.Tensor":
        import torch.nn.functional as F

        size = self.out_size
        return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                             antialias=True).clamp_(0.0, 1.0)

    # ------------------------------------------------------------------ geometry
    def _geometry(self, x: "torch.Tensor", u: "torch.Tensor") -> "torch.Tensor":
        import torch
        import torch.nn.functional as F

        s = self.settings
        n = x.shape[0]
        one = torch.ones(n, dtype=torch.float64)
        # random resized crop: area fraction in [crop_scale_min, 1], aspect ratio in [3/4, 4/3]
        # (log-uniform), as torchvision's RandomResizedCrop; sides as fractions of the image side
        if s.crop_scale_min < 1.0:
            area = s.crop_scale_min + (1.0 - s.crop_scale_min) * u[:, _SCALE]
            log_r = math.log(3 / 4) + (math.log(4 / 3) - math.log(3 / 4)) * u[:, _RATIO]
            ratio = torch.exp(log_r)
            cw = torch.sqrt(area * ratio).clamp(max=1.0)
            ch = torch.sqrt(area / ratio).clamp(max=1.0)
            # centre anywhere that keeps the crop inside the image (normalised coords [-1, 1])
            cx = (1.0 - cw) * (2.0 * u[:, _CX] - 1.0)
            cy = (1.0 - ch) * (2.0 * u[:, _CY] - 1.0)
        else:
            cw, ch = one, one
            cx = cy = torch.zeros(n, dtype=torch.float64)
        sx = cw * torch.where(u[:, _HFLIP] < 0.5, -1.0, 1.0) if s.hflip else cw
        sy = ch * torch.where(u[:, _VFLIP] < 0.5, -1.0, 1.0) if s.vflip else ch
        angle = torch.deg2rad((2.0 * u[:, _ANGLE] - 1.0) * s.rotation)
        cos, sin = torch.cos(angle), torch.sin(angle)
        # input = centre + R(angle) @ diag(sx, sy) @ output  (affine_grid's convention: output -> input)
        theta = torch.stack([
            torch.stack([cos * sx, -sin * sy, cx], dim=1),
            torch.stack([sin * sx, cos * sy, cy], dim=1),
        ], dim=1).to(x.dtype).to(x.device)  # float64 never reaches the device (MPS lacks it)

        size = self.out_size
        src = x
        # a much larger source would alias under bilinear sampling: shrink it first (antialiased),
        # keeping enough pixels for the tightest crop
        keep = max(size, math.ceil(size / math.sqrt(s.crop_scale_min)))
        if x.shape[-1] > 2 * keep:
            src = F.interpolate(x, size=(keep, keep), mode="bilinear", align_corners=False, antialias=True)
        # the sampling grid, as affine_grid(theta, align_corners=False) builds it, but as one small
        # matrix product (several times faster than affine_grid on CPU)
        lin = (torch.arange(size, device=x.device, dtype=x.dtype) * 2.0 + 1.0) / size - 1.0
        base = torch.stack([lin.view(1, size).expand(size, size), lin.view(size, 1).expand(size, size),
                            torch.ones(size, size, device=x.device, dtype=x.dtype)], dim=-1).view(-1, 3)
        grid = torch.einsum("pk,njk->npj", base, theta).view(n, size, size, 2)
        return F.grid_sample(src, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    # ------------------------------------------------------------------ colour
    def _colour_matrix(self, x: "torch.Tensor", u: "torch.Tensor"):
        """Brightness, contrast, saturation, hue and channel shift as ONE affine map per sample.

        Every one of them is affine in RGB (contrast blends with the image's mean grey, a constant
        per sample), so they compose into ``x' = M x + b``, applied in a single batched product,
        then clipped to [0, 1] once (torchvision clips after each step; this differs only where a
        colour leaves the cube midway). Hue rotates chroma in YIQ space around the grey axis
        (luma kept), the usual linear stand-in for an HSV hue shift. Returns (M, b) or None.
        """
        import torch

        s = self.settings
        if not (s.brightness or s.contrast or s.saturation or s.hue or s.channel_shift):
            return None
        n = x.shape[0]
        dev, dt = x.device, x.dtype  # composed on the batch's device: no sync, tiny tensors
        uu = u.to(dt).to(dev)
        eye = torch.eye(3, device=dev, dtype=dt)
        m = eye.repeat(n, 1, 1)                                 # (N, 3, 3)
        b = torch.zeros(n, 3, 1, device=dev, dtype=dt)          # (N, 3, 1)
        gray_w = torch.tensor(_GRAY, device=dev, dtype=dt).view(1, 1, 3)

        def factor(slot: int, strength: float) -> "torch.Tensor":
            lo, hi = max(0.0, 1.0 - strength), 1.0 + strength
            return (lo + (hi - lo) * uu[:, slot]).view(n, 1, 1)

        if s.brightness > 0:
            f = factor(_BRIGHT, s.brightness)
            m, b = f * m, f * b
        if s.contrast > 0:
            c = factor(_CONTRAST, s.contrast)
            mean_rgb = x.mean(dim=(2, 3)).view(n, 3, 1)
            grey = gray_w @ (m @ mean_rgb + b)                  # (N, 1, 1): mean grey so far
            m, b = c * m, c * b + (1.0 - c) * grey
        if s.saturation > 0:
            f = factor(_SAT, s.saturation)
            sat = f * eye + (1.0 - f) * gray_w.expand(3, 1, 3).reshape(3, 3)
            m, b = sat @ m, sat @ b
        if s.hue > 0:
            # sign as torchvision's adjust_hue: a positive shift turns red towards yellow
            a = -2.0 * math.pi * s.hue * (2.0 * uu[:, _HUE] - 1.0)
            cos, sin = torch.cos(a), torch.sin(a)
            zero, one = torch.zeros_like(a), torch.ones_like(a)
            rot = torch.stack([one, zero, zero, zero, cos, -sin, zero, sin, cos], dim=1).view(n, 3, 3)
            to_yiq, from_yiq = (t.to(dt).to(dev) for t in _yiq())
            hue = from_yiq @ rot @ to_yiq
            m, b = hue @ m, hue @ b
        if s.channel_shift > 0:
            b = b + ((2.0 * uu[:, _SHIFT_R:_SHIFT_B + 1] - 1.0) * s.channel_shift).view(n, 3, 1)
        return m, b

    # ------------------------------------------------------------------ blur
    def _blur(self, x: "torch.Tensor", sigma: "torch.Tensor") -> "torch.Tensor":
        """Separable Gaussian blur with a per-sample sigma (pixels), as one depthwise convolution."""
        import torch
        import torch.nn.functional as F

        n, c, h, w = x.shape
        radius = min(math.ceil(3.0 * self.settings.blur), h - 1, w - 1)
        if radius < 1:
            return x
        t = torch.arange(-radius, radius + 1, dtype=torch.float64)
        sig = sigma.clamp(min=1e-3).view(n, 1)
        k = torch.exp(-0.5 * (t.view(1, -1) / sig) ** 2)
        k = (k / k.sum(dim=1, keepdim=True)).float()            # (N, K); sigma ~0 -> a delta
        k = k.repeat_interleave(c, dim=0).to(x.device, x.dtype)  # (N*3, K)
        y = x.reshape(1, n * c, h, w)
        y = F.pad(y, (radius, radius, radius, radius), mode="reflect")
        y = F.conv2d(y, k.view(n * c, 1, 1, -1), groups=n * c)
        y = F.conv2d(y, k.view(n * c, 1, -1, 1), groups=n * c)
        return y.reshape(n, c, h, w)


# ---------------------------------------------------------------------- preview
def preview(image: Union[str, "os.PathLike", bytes, "Image.Image"], settings: AugmentSettings,
            n: int = 8, seed: int = 0, size: int = 64) -> "list[Image.Image]":
    """``n`` augmented versions of ``image`` as training would see them, as PIL RGB images.

    The image is decoded exactly like the training cache (:func:`imageio.load_square_array` at
    ``size``); the same ``seed`` always gives the same pictures. Raises ``ImageError`` for an
    unreadable image and :class:`CatdogError` for invalid settings.
    """
    import numpy as np
    import torch
    from PIL import Image

    from .imageio import load_square_array

    settings.validate()
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    arr = load_square_array(image, size)
    x = torch.from_numpy(np.array(arr, dtype=np.uint8)).permute(2, 0, 1).float().div_(255.0)
    batch = x.unsqueeze(0).expand(n, -1, -1, -1).contiguous()
    out = BatchAugmenter(settings, size)(batch, generator=torch.Generator().manual_seed(seed))
    pixels = out.mul(255.0).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return [Image.fromarray(p, "RGB") for p in pixels]
