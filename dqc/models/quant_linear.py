"""Linear layer with DQ's ``LinearQuantized`` points: input, weight and output feature.

It is not mask-aware: every row is quantized at every step, as in the authors' GIN MLPs.

With ``batch_norm=True`` a ``BatchNorm1d`` follows the linear and is folded into it, so the
deployed layer is one linear with per-tensor quantized weights, which the integer program
runs as is. Training folds the batch's statistics (gradients flow through them, as through
BatchNorm) and updates the running ones; eval folds the running statistics::

    W' = W * gamma / sqrt(var + eps),   b' = (b - mean) * gamma / sqrt(var + eps) + beta

and the weight quantizer sees ``W'`` (Jacob et al. 2018's folded-BN training).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dqc.models.quant_points import QuantPoints
from dqc.schemes import Scheme


class QuantLinear(nn.Module):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        scheme: Scheme,
        input_kind="relu",
        batch_norm: bool = False,
    ):
        super().__init__()
        self.lin = nn.Linear(in_channels, out_channels)
        self.bn = nn.BatchNorm1d(out_channels) if batch_norm else None
        self.quant = QuantPoints(scheme, ("input", "weight", "feature"), input_kind)

    def _fold(self, mean: torch.Tensor, var: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scale = self.bn.weight / torch.sqrt(var + self.bn.eps)
        return self.lin.weight * scale[:, None], (self.lin.bias - mean) * scale + self.bn.bias

    @property
    def folded_weight(self) -> torch.Tensor:
        """The deployed weight: BatchNorm's running statistics folded in (if any)."""
        return self.lin.weight if self.bn is None else self._fold(*self._running())[0]

    @property
    def folded_bias(self) -> torch.Tensor:
        """The deployed bias: BatchNorm's running statistics folded in (if any)."""
        return self.lin.bias if self.bn is None else self._fold(*self._running())[1]

    def _running(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.bn.running_mean, self.bn.running_var

    def _batch_statistics(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and (biased) variance of the float linear's output over ``x``'s rows; the
        running statistics move toward them as ``BatchNorm1d`` would."""
        out = F.linear(x, self.lin.weight, self.lin.bias)
        mean, var = out.mean(0), out.var(0, unbiased=False)
        with torch.no_grad():
            n, momentum = out.size(0), self.bn.momentum
            self.bn.running_mean.lerp_(mean, momentum)
            self.bn.running_var.lerp_(var * n / max(n - 1, 1), momentum)
            self.bn.num_batches_tracked += 1
        return mean, var

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.quant.input(x)
        if self.bn is None:
            weight, bias = self.lin.weight, self.lin.bias
        elif self.training and x.size(0) > 0:
            weight, bias = self._fold(*self._batch_statistics(x))
        else:
            weight, bias = self.folded_weight, self.folded_bias
        return self.quant.feature(F.linear(x, self.quant.weight(weight), bias))
