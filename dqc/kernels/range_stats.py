"""What a percentile range tracker needs to know of a batch, in one fused pass over it.

Degree-Quant's tracker keeps a running ``[lo, hi]`` that only widens; a batch moves ``lo``
only when at least ``k`` of its values lie below it (likewise ``hi``). In torch, finding out
takes a min/max pass, a comparison pass per end and a selection of the values outside
(several passes over tensors of millions of values), and most steps then find fewer than
``k`` values outside and keep the range. This kernel reads the batch once and returns the
counts below and above, each row weighted (Degree-Quant excludes protected rows with weight
0; a GIN node's row counts once per message it sends): the tracker selects values only
when a count reaches ``k``.
"""

from __future__ import annotations

import functools

import torch
from tvm.script import tirx as T

from dqc.kernels.on_torch import as_rows, call


@functools.cache
def range_stats_kernel():
    """PrimFunc ``(x [n, c] float32, weight [n] int64, below [c] int64, above [c] int64,
    lo, hi)``: adds to ``below[j]`` (``above[j]``) the weights of the rows whose column ``j``
    is below ``lo`` (above ``hi``). Columns accumulate side by side, so the loop vectorizes."""

    @T.prim_func
    def dqc_range_stats(
        var_x: T.handle,
        var_weight: T.handle,
        var_below: T.handle,
        var_above: T.handle,
        lo: T.float32,
        hi: T.float32,
    ):
        T.func_attr({"tirx.noalias": True})
        n, c = T.int64(), T.int64()
        x = T.match_buffer(var_x, (n, c), "float32")
        weight = T.match_buffer(var_weight, (n,), "int64")
        below = T.match_buffer(var_below, (c,), "int64")
        above = T.match_buffer(var_above, (c,), "int64")
        for i in range(n):
            for j in range(c):
                below[j] = below[j] + T.if_then_else(x[i, j] < lo, weight[i], T.int64(0))
                above[j] = above[j] + T.if_then_else(x[i, j] > hi, weight[i], T.int64(0))

    return dqc_range_stats


def count_outside(x: torch.Tensor, weight: torch.Tensor, lo: float, hi: float) -> tuple[int, int]:
    """How many values of ``x`` (float32 CPU, rows weighted by ``weight``, int64, one per row)
    lie below ``lo`` and above ``hi``."""
    matrix = as_rows(x)
    if matrix.numel() == 0:
        return 0, 0
    below = torch.zeros(matrix.size(1), dtype=torch.int64)
    above = torch.zeros(matrix.size(1), dtype=torch.int64)
    call(range_stats_kernel(), matrix, weight.to(torch.int64), below, above, lo, hi)
    return int(below.sum()), int(above.sum())
