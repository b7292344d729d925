"""GAT's attention softmax in integers: the spec shared by the torch op, the TIR kernel and
the NumPy reference.

The attention logits reach the softmax as integer codes ``a`` of the ``alpha`` quantizer, so
``LeakyReLU`` and ``exp`` only ever see ``2^bits`` distinct values and can be tabulated once,
at compile time. For each target node ``i`` and head ``h``, with ``d`` the largest code among
``i``'s in-edges (LeakyReLU is increasing, so it marks the largest logit)::

    E[c, d] = round(2^16 * exp(l(c) - l(d))),  l(c) = leaky_relu(scale * (c - zero_point))
    S       = sum over in-edges e of E[a_e, d]                 (>= 2^16: the max contributes 2^16)
    w_e     = floor((E[a_e, d] * 2^16 + S) / (2 S))            = round(2^15 * E / S), Q15

Weights are Q15 integers (scale 2^-15), deterministic on every platform: a float softmax would
depend on each libm's ``exp``. They differ from the float softmax by at most ~2^-16 per edge.
"""

from __future__ import annotations

import numpy as np

TABLE_BITS = 16
WEIGHT_BITS = 15
WEIGHT_SCALE = 2.0**-WEIGHT_BITS


def exp_table(scale: float, zero_point: int, qmin: int, qmax: int, negative_slope: float):
    """``E[c - qmin, d - qmin]`` as int32, zero where ``c > d`` (never looked up)."""
    codes = np.arange(qmin, qmax + 1, dtype=np.float64)
    real = scale * (codes - zero_point)
    logits = np.where(real >= 0, real, negative_slope * real)
    diff = logits[:, None] - logits[None, :]
    table = np.round(2.0**TABLE_BITS * np.exp(np.minimum(diff, 0.0)))
    return np.where(diff <= 0, table, 0).astype(np.int32)


def edge_softmax(
    alpha: np.ndarray,
    indptr: np.ndarray,
    scale: float,
    zero_point: int,
    qmin: int,
    qmax: int,
    negative_slope: float,
) -> np.ndarray:
    """Q15 attention weights ``[E, heads]`` (int32) of alpha codes sorted by target node."""
    table = exp_table(scale, zero_point, qmin, qmax, negative_slope).astype(np.int64)
    alpha = alpha.astype(np.int64) - qmin
    counts = np.diff(indptr)
    rows = np.repeat(np.arange(counts.size), counts)
    if alpha.size == 0:
        return np.zeros(alpha.shape, np.int32)
    row_max = np.full((counts.size, alpha.shape[1]), -1, np.int64)
    np.maximum.at(row_max, rows, alpha)
    e = table[alpha, row_max[rows]]
    s = np.zeros(row_max.shape, np.int64)
    np.add.at(s, rows, e)
    s = s[rows]
    return ((e * 2**TABLE_BITS + s) // (2 * s)).astype(np.int32)
