"""Fake quantization with the two gradients Degree-Quant compares.

Forward (both): ``x_hat = (clamp(round(x / s + z), qmin, qmax) - z) * s``, rounding before
clamping, float32 arithmetic.

Backward:

* ``"ste"``, the plain straight-through estimator: the gradient passes unchanged everywhere.
* ``"gc"``, the clipped estimator DQ trains with: with ``r = round(x / s + z)``, the gradient is
  zeroed where ``r <= qmin`` or ``r >= qmax`` (inclusive, so values landing exactly on the
  ends of the grid get no gradient either).
"""

from __future__ import annotations

import torch

from dqc.qparams import QParams

GRADIENTS = ("ste", "gc")


class _FakeQuantize(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, scale, zero_point, qmin, qmax, clip_grad):
        rounded = torch.round(x / scale + zero_point)
        ctx.clip_grad = clip_grad and ctx.needs_input_grad[0]
        if ctx.clip_grad:
            ctx.save_for_backward((rounded > qmin) & (rounded < qmax))

        return (rounded.clamp(qmin, qmax) - zero_point) * scale

    @staticmethod
    def backward(ctx, grad_out):
        if ctx.clip_grad:
            (inside,) = ctx.saved_tensors
            grad_out = grad_out * inside
        return grad_out, None, None, None, None, None


def fake_quantize(x: torch.Tensor, qparams: QParams, grad: str = "gc") -> torch.Tensor:
    """Round ``x`` onto the grid of ``qparams`` and map it back to float, keeping a gradient."""
    if grad not in GRADIENTS:
        raise ValueError(f"unknown gradient {grad!r}; expected one of {GRADIENTS}")
    return _FakeQuantize.apply(
        x, qparams.scale, float(qparams.zero_point), qparams.qmin, qparams.qmax, grad == "gc"
    )
