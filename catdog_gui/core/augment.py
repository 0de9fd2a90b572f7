"""Data augmentation: settings, batched GPU-friendly transforms, and previews.

(The settings dataclass is the contract shared by TrainConfig, the CLI, the GUI and the model file.)

:class:`BatchAugmenter` transforms a whole batch at once on the batch's own device, with its OWN
random parameters for every sample (``torchvision.transforms.v2`` on a batched tensor would draw one
set for the whole batch). The geometric part (random resized crop, flips, rotation) is a single
per-sample affine warp (``affine_grid`` + ``grid_sample``, bilinear, reflection padding); the colour
part (brightness, contrast, saturation, hue, channel shift) is per-sample arithmetic, blur is one
depthwise convolution with a per-sample Gaussian kernel, noise is additive.

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

from .errors import CatdogError

if TYPE_CHECKING:  # pragma: no cover
    import os

    import torch
    from PIL import Image


@dataclass
class AugmentSettings:
    enabled: bool = False
    crop_scale_min: float = 0.6     # random resized crop: smallest area fraction kept (1.0 = off)
    hflip: bool = True              # random horizontal flip (p=0.5)
    vflip: bool = False             # random vertical flip (p=0.5)
    rotation: float = 10.0          # max degrees either way (0 = off)
    brightness: float = 0.2         # factor range 1 +- brightness (0 = off)
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.02               # fraction of the colour wheel, <= 0.5
    channel_shift: float = 0.05     # per-channel additive RGB shift, fraction of full scale
    blur: float = 0.0               # max Gaussian sigma in pixels at the model's input size
    noise: float = 0.0              # max std of additive Gaussian noise, fraction of full scale

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
        import torch.nn.functional as F

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
            return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                                 antialias=True).clamp_(0.0, 1.0)

        u = torch.rand(n, _NUM_PARAMS, generator=generator, dtype=torch.float64)

        if s.geometric:
            x = self._geometry(x, u)
        elif (h, w) != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        else:
            x = x.clone()  # never modify the caller's batch in place
        x = self._colour(x, u)
        if s.blur > 0:
            x = self._blur(x, u[:, _BLUR] * s.blur)
        if s.noise > 0:
            std = (u[:, _NOISE] * s.noise).float().view(n, 1, 1, 1)
            noise = torch.randn(x.shape, generator=generator, dtype=torch.float32) * std
            x.add_(noise.to(x.device))
        return x.clamp_(0.0, 1.0)

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
        # input = centre + R(angle) @ diag(sx, sy) @ output  (affine_grid maps output -> input)
        theta = torch.stack([
            torch.stack([cos * sx, -sin * sy, cx], dim=1),
            torch.stack([sin * sx, cos * sy, cy], dim=1),
        ], dim=1).to(device=x.device, dtype=x.dtype)

        size = self.out_size
        src = x
        # a much larger source would alias under bilinear sampling: shrink it first (antialiased),
        # keeping enough pixels for the tightest crop
        keep = max(size, math.ceil(size / math.sqrt(s.crop_scale_min)))
        if x.shape[-1] > 2 * keep:
            src = F.interpolate(x, size=(keep, keep), mode="bilinear", align_corners=False, antialias=True)
        grid = F.affine_grid(theta, [n, 3, size, size], align_corners=False)
        return F.grid_sample(src, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    # ------------------------------------------------------------------ colour
    def _colour(self, x: "torch.Tensor", u: "torch.Tensor") -> "torch.Tensor":
        import torch

        s = self.settings
        n = x.shape[0]
        dev = x.device

        def factor(slot: int, strength: float) -> "torch.Tensor":
            lo, hi = max(0.0, 1.0 - strength), 1.0 + strength
            return (lo + (hi - lo) * u[:, slot]).float().view(n, 1, 1, 1).to(dev)

        # x is our own tensor here (a fresh warp, resize or clone): work in place
        gray_w = torch.tensor(_GRAY, dtype=x.dtype, device=dev)

        def gray(t: "torch.Tensor") -> "torch.Tensor":  # (N, 1, H, W)
            return torch.tensordot(t, gray_w, dims=([1], [0])).unsqueeze(1)

        if s.brightness > 0:
            x.mul_(factor(_BRIGHT, s.brightness)).clamp_(0.0, 1.0)
        if s.contrast > 0:
            c = factor(_CONTRAST, s.contrast)
            mean = gray(x).mean(dim=(2, 3), keepdim=True)
            x.mul_(c).add_((1.0 - c) * mean).clamp_(0.0, 1.0)
        if s.saturation > 0:
            f = factor(_SAT, s.saturation)
            g = gray(x).mul_(1.0 - f)
            x.mul_(f).add_(g).clamp_(0.0, 1.0)
        if s.hue > 0:
            x = self._hue(x, (2.0 * u[:, _HUE] - 1.0) * s.hue)
        if s.channel_shift > 0:
            shift = (2.0 * u[:, _SHIFT_R:_SHIFT_B + 1] - 1.0) * s.channel_shift
            x.add_(shift.float().view(n, 3, 1, 1).to(dev)).clamp_(0.0, 1.0)
        return x

    @staticmethod
    def _hue(x: "torch.Tensor", turns: "torch.Tensor") -> "torch.Tensor":
        """Shift the HSV hue by ``turns`` (fraction of the colour wheel, one per sample).

        The same result as torchvision's ``adjust_hue``, vectorised with a per-sample shift: value
        (max) and chroma (max - min) are kept, and RGB is rebuilt from the shifted hue with
        ``channel_n = v - c * clamp(min(k, 4 - k), 0, 1)``, ``k = (n + 6 h) mod 6``, n = 5, 3, 1.
        """
        import torch

        n = x.shape[0]
        r, g, b = x.unbind(dim=1)
        lo, v = torch.aminmax(x, dim=1)
        c = v - lo
        safe_c = torch.where(c > 0, c, 1.0)
        h = torch.where(v == r, (g - b) / safe_c,
                        torch.where(v == g, 2.0 + (b - r) / safe_c, 4.0 + (r - g) / safe_c))
        h.add_((6.0 * turns).to(device=x.device, dtype=x.dtype).view(n, 1, 1))   # in sixths
        # (full-size temporaries are costly on CPU: one allocation, then in place)
        k = torch.tensor([5.0, 3.0, 1.0], device=x.device, dtype=x.dtype).view(1, 3, 1, 1) + h.unsqueeze(1)
        k.remainder_(6.0)
        w = k.sub_(2.0).abs_().neg_().add_(2.0).clamp_(0.0, 1.0)                 # min(k, 4 - k) in [0, 1]
        return w.mul_(c.unsqueeze(1)).neg_().add_(v.unsqueeze(1)).clamp_(0.0, 1.0)

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
