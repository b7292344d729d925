"""Linear layer with DQ's ``LinearQuantized`` points: input, weight and output feature.

It is not mask-aware: every row is quantized at every step, as in the authors' GIN MLPs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dqc.models.quant_points import QuantPoints
from dqc.schemes import Scheme


class QuantLinear(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, scheme: Scheme, input_kind="relu"):
        super().__init__()
        self.lin = nn.Linear(in_channels, out_channels)
        self.quant = QuantPoints(scheme, ("input", "weight", "feature"), input_kind)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.quant.weight(self.lin.weight)
        return self.quant.feature(F.linear(self.quant.input(x), weight, self.lin.bias))
