"""Training's fake quantization as one fused TVM kernel, run on torch tensors' memory.

Quantization-aware training fake-quantizes every activation, message and weight at every
step, on tensors of millions of values. In torch that is a dozen elementwise passes per
tensor (divide, shift, round, clamp, shift back, scale, copy the protected rows, build the
gradient mask). This kernel reads ``x`` once and writes the fake-quantized values and, for
the clipped gradient, the mask of values strictly inside the grid, with the same float32
operations in the same order (true division, round half to even, clamp), so the result is
bit-identical to the torch arithmetic it replaces. Rows flagged in ``protect`` pass through,
with a mask of 1.
"""

from __future__ import annotations

import functools

import torch
from tvm.script import tirx as T

from dqc.kernels.on_torch import as_rows, call


@functools.cache
def fake_quantize_kernel(with_inside: bool):
    """PrimFunc ``(x [n, c], protect [n] uint8, out [n, c][, inside [n, c]], scale,
    zero_point, qmin, qmax)``, float32 but for ``protect``; ``inside`` is written when
    ``with_inside``."""

    @T.prim_func
    def dqc_fake_quantize(
        var_x: T.handle,
        var_protect: T.handle,
        var_out: T.handle,
        var_inside: T.handle,
        scale: T.float32,
        zero_point: T.float32,
        qmin: T.float32,
        qmax: T.float32,
    ):
        T.func_attr({"tirx.noalias": True})
        n, c = T.int64(), T.int64()
        x = T.match_buffer(var_x, (n, c), "float32")
        protect = T.match_buffer(var_protect, (n,), "uint8")
        out = T.match_buffer(var_out, (n, c), "float32")
        inside = T.match_buffer(var_inside, (n if with_inside else 0, c), "float32")
        for i in range(n):
            for j in range(c):
                code = T.round(x[i, j] / scale + zero_point)
                quantized = (T.max(T.min(code, qmax), qmin) - zero_point) * scale
                out[i, j] = T.if_then_else(protect[i] != T.uint8(0), x[i, j], quantized)
                if with_inside:
                    inside[i, j] = T.Cast(
                        "float32", protect[i] != T.uint8(0) or (qmin < code and code < qmax)
                    )

    return dqc_fake_quantize


def fused_fake_quantize(
    x: torch.Tensor,
    protect: torch.Tensor | None,
    scale: float,
    zero_point: float,
    qmin: int,
    qmax: int,
    with_inside: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(out, inside)`` for float32 CPU ``x`` (any shape; ``protect``: bool, one per row of
    ``x``, or None); ``inside`` (1.0 strictly inside the grid or protected, else 0.0) is None
    unless ``with_inside``."""
    matrix = as_rows(x)
    if matrix.numel() == 0:  # TVM takes no strides it did not expect, which empty views have
        return x.detach().clone(), torch.ones_like(x) if with_inside else None
    if protect is None:
        protect = torch.zeros(matrix.size(0), dtype=torch.uint8)
    out = torch.empty_like(matrix)
    inside = torch.empty_like(matrix) if with_inside else matrix.new_empty(0, matrix.size(1))
    call(
        fake_quantize_kernel(with_inside),
        *(matrix, protect.to(torch.uint8), out, inside),
        *(scale, zero_point, float(qmin), float(qmax)),
    )
    return out.view_as(x), inside.view_as(x) if with_inside else None
