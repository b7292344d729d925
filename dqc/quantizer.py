"""A quantization point: one tensor role of one layer, fake-quantized with a tracked range.

In training the quantizer tracks the range of what it sees and fake-quantizes. With a
Degree-Quant ``protect`` mask over the tensor's rows (nodes or edges), protected rows pass
through in float and only the unprotected rows reach the range tracker, as in the authors'
``*_low`` / ``*_high`` split. In eval the range is frozen, no mask applies and every row is
quantized. The range lives in the buffers ``min_val`` / ``max_val`` (NaN until the first
training batch), so a state dict carries everything the compiler needs.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from dqc.fake_quant import fake_quantize
from dqc.qparams import QParams
from dqc.range_trackers import update_range


class Quantizer(nn.Module):
    """Fake quantizer for one (layer, role); ``forward(x, protect=None)``."""

    def __init__(
        self,
        bits: int,
        signed: bool = True,
        tracker: str = "percentile",
        percentile: float | None = None,
        grad: str = "gc",
        sparse_data: bool = False,
    ):
        """``sparse_data`` marks a point that sees raw, mostly-zero dataset features: it then
        quantizes only their nonzeros (same result, a fraction of the work)."""
        super().__init__()
        self.bits, self.signed, self.sparse_data = bits, signed, sparse_data

        self.tracker, self.percentile, self.grad = tracker, percentile, grad
        self.register_buffer("min_val", torch.tensor(math.nan))
        self.register_buffer("max_val", torch.tensor(math.nan))

    @property
    def calibrated(self) -> bool:
        return not bool(torch.isnan(self.min_val))

    def qparams(self) -> QParams:
        """Scale and zero point of the current range."""
        if not self.calibrated:
            raise RuntimeError("quantizer has no range yet: run at least one training step")
        return QParams.from_range(float(self.min_val), float(self.max_val), self.bits, self.signed)

    def observe(self, x: torch.Tensor, counts: torch.Tensor | None = None) -> None:
        """Fold batch ``x`` (with ``counts``: each row of it that many times) into the tracked
        range; skipped for an empty selection."""
        if x.numel() == 0 or (counts is not None and not bool(counts.any())):
            return
        current = (self.min_val, self.max_val) if self.calibrated else None
        lo, hi = update_range(self.tracker, current, x, self.percentile, counts)
        self.min_val.copy_(lo)
        self.max_val.copy_(hi)

    def forward(self, x: torch.Tensor, protect: torch.Tensor | None = None) -> torch.Tensor:
        if self.training:
            self.observe(x, None if protect is None else (~protect).long())
        return self._quantize(x, protect)

    def gathered(
        self, x: torch.Tensor, index: torch.Tensor, protect: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``self(x[index], protect[index])``, value for value and gradient for gradient: the
        quantized rows of ``x`` picked by ``index`` (messages gathered from their source
        nodes). Each row is quantized once rather than once per pick, the range tracker
        weighing it by how often it is picked: messages outnumber nodes, so this spares most
        of the quantizer's passes over them."""
        if self.training:
            counts = torch.bincount(index, minlength=x.size(0))
            self.observe(x, counts if protect is None else counts.masked_fill(protect, 0))
        return self._quantize(x, protect).index_select(0, index)

    def _quantize(self, x: torch.Tensor, protect: torch.Tensor | None) -> torch.Tensor:
        """Fake quantization with the current range; in training, ``x`` as is until the first
        unprotected row has given a range."""
        if self.training:
            if not self.calibrated:  # every row protected so far: nothing to quantize with
                return x
        else:
            protect = None
        if self.sparse_data and not x.requires_grad and x.dim() == 2:
            sparse = _quantize_nonzeros(x, protect, self.qparams(), not self.training)
            if sparse is not None:
                return sparse
        return fake_quantize(x, self.qparams(), self.grad, protect, deployed=not self.training)

    def extra_repr(self) -> str:
        sign = "signed" if self.signed else "unsigned"
        return f"bits={self.bits}, {sign}, tracker={self.tracker}, grad={self.grad}"


def _quantize_nonzeros(
    x: torch.Tensor, protect: torch.Tensor | None, qparams: QParams, deployed: bool
):
    """The fake quantization of a mostly-zero, gradient-free matrix (raw bag-of-words
    features), computed on its nonzeros only; None if ``x`` is not that sparse.

    Exact: the range always contains 0, so the zero point is on the grid and 0 maps to 0.
    """
    rows, cols = x.nonzero(as_tuple=True)
    if rows.numel() > x.numel() // 8:
        return None
    values = x[rows, cols]
    rows_protected = None if protect is None else protect[rows]
    quantized = fake_quantize(values, qparams, protect=rows_protected, deployed=deployed)
    out = torch.zeros_like(x)
    out[rows, cols] = quantized
    return out


class Float(nn.Module):
    """The quantization point of a float model: passes tensors through unchanged."""

    def forward(self, x: torch.Tensor, protect: torch.Tensor | None = None) -> torch.Tensor:
        return x

    def gathered(
        self, x: torch.Tensor, index: torch.Tensor, protect: torch.Tensor | None = None
    ) -> torch.Tensor:
        return x.index_select(0, index)
