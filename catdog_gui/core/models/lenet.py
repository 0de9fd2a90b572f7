"""LeNet-5 (LeCun, Bottou, Bengio and Haffner, 1998), and a modern variant.

The original, as in the paper's Figure 2, adapted to colour photos:

======  ==========================================  =================
layer   what it is                                  output volume
======  ==========================================  =================
input   32x32 image, 3 channels (paper: 1)          3 x 32 x 32
C1      6 convolutions 5x5                          6 x 28 x 28
S2      subsampling 2x2, trainable coefficient+bias  6 x 14 x 14
C3      16 convolutions 5x5, sparse connections     16 x 10 x 10
S4      subsampling 2x2                             16 x 5 x 5
C5      120 convolutions 5x5 (fully connected)      120 x 1 x 1
F6      84 units                                    84
output  K units, softmax                            K
======  ==========================================  =================

Kept from the paper: the layer sizes, C3's connection table (Table I, as a fixed mask on the
weights), trainable subsampling (sum of a 2x2 window times a learned per-map coefficient plus a
bias), and the scaled hyperbolic tangent ``1.7159 * tanh(2/3 * x)``.

Simplified: C1 sees 3 colour channels instead of 1 grey one; the output layer is a linear layer
with softmax trained by cross-entropy instead of the paper's Euclidean RBF units with fixed
ASCII-bitmap targets (which only make sense for characters); inputs are scaled to [-1, 1]
instead of the paper's [-0.1, 1.175]; PyTorch's default initialisation.
"""

from __future__ import annotations

import torch
from torch import nn

from .registry import HALF_MEAN, HALF_STD, ModelSpec, register

# Table I of the paper: which S2 maps (rows) feed each C3 map (columns)
_C3_TABLE = [
    [0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 5], [4, 5, 0], [5, 0, 1],
    [0, 1, 2, 3], [1, 2, 3, 4], [2, 3, 4, 5], [3, 4, 5, 0], [4, 5, 0, 1], [5, 0, 1, 2],
    [0, 1, 3, 4], [1, 2, 4, 5], [0, 2, 3, 5],
    [0, 1, 2, 3, 4, 5],
]


class ScaledTanh(nn.Module):
    """The paper's squashing function f(a) = A tanh(S a), A = 1.7159, S = 2/3."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 1.7159 * torch.tanh(x * (2.0 / 3.0))


class Subsampling(nn.Module):
    """S2/S4: the four inputs of each 2x2 window are summed, multiplied by a trainable
    coefficient and added to a trainable bias (one of each per feature map)."""

    def __init__(self, channels: int):
        super().__init__()
        self.kernel_size = (2, 2)
        self.stride = (2, 2)
        self.weight = nn.Parameter(torch.full((1, channels, 1, 1), 0.25))
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.avg_pool2d(x, 2) * 4.0 * self.weight + self.bias


class SparseConv2d(nn.Conv2d):
    """C3: a 5x5 convolution where each output map sees only the inputs the table lists."""

    def __init__(self, table: list[list[int]], in_channels: int, kernel_size: int):
        super().__init__(in_channels, len(table), kernel_size)
        mask = torch.zeros(len(table), in_channels, 1, 1)
        for out_map, inputs in enumerate(table):
            mask[out_map, inputs] = 1.0
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.weight * self.mask, self.bias)

    def effective_params(self) -> int:
        """Weights that exist in the paper's C3 (masked ones are always zero): 1,516 for LeNet-5."""
        k = self.weight.shape[2] * self.weight.shape[3]
        return int(self.mask.sum().item()) * k + self.out_channels


class LeNet5(nn.Module):
    """LeNet-5 as in the paper (see the module docstring for what is adapted)."""

    def __init__(self, num_classes: int = 2, in_channels: int = 3):
        super().__init__()
        self.c1 = nn.Conv2d(in_channels, 6, 5)
        self.act1 = ScaledTanh()
        self.s2 = Subsampling(6)
        self.act2 = ScaledTanh()
        self.c3 = SparseConv2d(_C3_TABLE, 6, 5)
        self.act3 = ScaledTanh()
        self.s4 = Subsampling(16)
        self.act4 = ScaledTanh()
        self.c5 = nn.Conv2d(16, 120, 5)
        self.act5 = ScaledTanh()
        self.flatten = nn.Flatten()
        self.f6 = nn.Linear(120, 84)
        self.act6 = ScaledTanh()
        self.output = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act2(self.s2(self.act1(self.c1(x))))
        x = self.act4(self.s4(self.act3(self.c3(x))))
        x = self.flatten(self.act5(self.c5(x)))
        return self.output(self.act6(self.f6(x)))

    def summary_layers(self):
        return [(n, getattr(self, n)) for n in ("c1", "s2", "c3", "s4", "c5", "f6", "output")]


class LeNet5Modern(nn.Module):
    """LeNet-5's shape with today's habits: ReLU, max pooling, dropout, any input size >= 16."""

    def __init__(self, num_classes: int = 2, image_size: int = 64, in_channels: int = 3):
        super().__init__()
        side = ((image_size - 4) // 2 - 4) // 2
        if side < 1:
            raise ValueError("LeNet-5 (modern) needs images of at least 16x16")
        self.c1 = nn.Conv2d(in_channels, 6, 5)
        self.act1 = nn.ReLU()
        self.s2 = nn.MaxPool2d(2)
        self.c3 = nn.Conv2d(6, 16, 5)
        self.act3 = nn.ReLU()
        self.s4 = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.c5 = nn.Linear(16 * side * side, 120)
        self.act5 = nn.ReLU()
        self.drop = nn.Dropout(0.3)
        self.f6 = nn.Linear(120, 84)
        self.act6 = nn.ReLU()
        self.output = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.s2(self.act1(self.c1(x)))
        x = self.s4(self.act3(self.c3(x)))
        x = self.drop(self.act5(self.c5(self.flatten(x))))
        return self.output(self.act6(self.f6(x)))

    def summary_layers(self):
        return [(n, getattr(self, n)) for n in ("c1", "s2", "c3", "s4", "c5", "f6", "output")]


def _build_original(num_classes: int, image_size: int, pretrained: bool = False, **_):
    return LeNet5(num_classes)


def _build_modern(num_classes: int, image_size: int, pretrained: bool = False, **_):
    return LeNet5Modern(num_classes, image_size)


register(ModelSpec(
    name="lenet5",
    title="LeNet-5 (original, 1998)",
    build=_build_original,
    default_image_size=32,
    fixed_image_size=True,
    mean=HALF_MEAN,
    std=HALF_STD,
    description="The original convolutional network of LeCun et al. (1998): 32x32 input, tanh, 61k parameters.",
    defaults={"epochs": 30, "batch_size": 32, "lr": 1e-3, "patience": 8, "threads": 1},
))

register(ModelSpec(
    name="lenet5_modern",
    title="LeNet-5 (modern)",
    build=_build_modern,
    default_image_size=64,
    fixed_image_size=False,
    mean=HALF_MEAN,
    std=HALF_STD,
    description="LeNet-5's layout with ReLU, max pooling and dropout, at a chosen input size.",
    defaults={"epochs": 30, "batch_size": 32, "lr": 1e-3, "patience": 8},
))
