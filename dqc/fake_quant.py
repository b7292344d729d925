"""Fake quantization with the two gradients Degree-Quant compares.

Forward (both): ``x_hat = (clamp(round(x / s + z), qmin, qmax) - z) * s``, rounding before
clamping, float32 arithmetic. Rows marked in ``protect`` (Degree-Quant's protected nodes)
pass through unchanged, gradient included. Training rounds half to even, as DQ does. The
deployed model (``deployed=True``, what quantizers use in eval mode) rounds as the integer
program does (``dqc.qparams.round_to_code``): values within 2^-10 of a half count as that
half, so float32 noise cannot send a tie to the other code than the compiled model picks.
Ties are frequent when a quantizer's range derives from another's grid, and at INT4 one code
is a sixteenth of the range. Training skips the snap.

Backward:

* ``"ste"``, the plain straight-through estimator: the gradient passes unchanged everywhere.
* ``"gc"``, the clipped estimator DQ trains with: with ``r = round(x / s + z)``, the gradient is
  zeroed where ``r <= qmin`` or ``r >= qmax`` (inclusive, so values landing exactly on the
  ends of the grid get no gradient either).

Training spends much of its time here, on tensors of millions of values, so in training the
forward is one fused TVM kernel (``dqc.kernels.fake_quantize``: one pass instead of a dozen,
same arithmetic, same bits). Eval mode stays in torch, so the fake-quant model the compiled
one is checked against does not share its code with the compiler. There the arithmetic runs
in place on one buffer and the clipping mask is a float tensor built by clamps: boolean
tensors and ``torch.where`` cost several times more per value on CPU.
"""

from __future__ import annotations

import torch

from dqc.kernels.fake_quantize import fused_fake_quantize
from dqc.qparams import QParams, round_to_code

GRADIENTS = ("ste", "gc")


def _strictly_inside(codes: torch.Tensor, qmin: int, qmax: int) -> torch.Tensor:
    """1.0 where the integer-valued ``codes`` lie strictly between qmin and qmax, else 0.0;
    overwrites ``codes``. With ``mid`` and ``half`` the grid's centre and half-width,
    ``half - |c - mid|`` is an integer that is at least 1 exactly inside."""
    mid, half = (qmin + qmax) / 2, (qmax - qmin) / 2
    return codes.sub_(mid).abs_().neg_().add_(half).clamp_(0.0, 1.0)


class _FakeQuantize(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, protect, scale, zero_point, qmin, qmax, clip_grad, deployed):
        ctx.clip_grad = clip_grad and ctx.needs_input_grad[0]
        if deployed:
            out, inside = _deployed(x, protect, scale, zero_point, qmin, qmax, ctx.clip_grad)
        else:
            out, inside = fused_fake_quantize(
                x, protect, scale, zero_point, qmin, qmax, ctx.clip_grad
            )
        if ctx.clip_grad:
            ctx.save_for_backward(inside)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        if ctx.clip_grad:
            (inside,) = ctx.saved_tensors
            grad_out = grad_out * inside
        return grad_out, None, None, None, None, None, None, None


def _deployed(x, protect, scale, zero_point, qmin, qmax, with_inside: bool):
    """Eval mode's ``(out, inside)`` in torch, with the integer program's rounding."""
    codes = round_to_code(torch.div(x, scale).add_(zero_point))
    out = codes.clamp(qmin, qmax).sub_(zero_point).mul_(scale)
    rows = None if protect is None else protect.nonzero().squeeze(1)
    if rows is not None:
        out.index_copy_(0, rows, x.index_select(0, rows))
    if not with_inside:
        return out, None
    inside = _strictly_inside(codes, qmin, qmax)
    if rows is not None:
        inside.index_fill_(0, rows, 1.0)
    return out, inside


def fake_quantize(
    x: torch.Tensor,
    qparams: QParams,
    grad: str = "gc",
    protect: torch.Tensor | None = None,
    deployed: bool = False,
) -> torch.Tensor:
    """Round ``x`` onto the grid of ``qparams`` and map it back to float, keeping a gradient;
    ``protect`` (bool, one per row of ``x``) marks rows left in float; ``deployed`` rounds
    ties as the integer program does."""
    if grad not in GRADIENTS:
        raise ValueError(f"unknown gradient {grad!r}; expected one of {GRADIENTS}")
    if protect is not None and protect.shape != x.shape[:1]:
        raise ValueError(f"protect mask of shape {tuple(protect.shape)} for x of {tuple(x.shape)}")
    return _FakeQuantize.apply(
        x,
        protect,
        qparams.scale,
        float(qparams.zero_point),
        qparams.qmin,
        qparams.qmax,
        grad == "gc",
        deployed,
    )
