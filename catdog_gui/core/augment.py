"""Data augmentation: settings, batched GPU-friendly transforms, and previews.

(The settings dataclass is the contract shared by TrainConfig, the CLI, the GUI and the model file.)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields


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
    noise: float = 0.0              # std of additive Gaussian noise, fraction of full scale

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> "AugmentSettings":
        d = d or {}
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})
