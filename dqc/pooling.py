"""Mean and add pooling per graph of a batch, as the compiled integer program computes them.

A batch of graphs is a disjoint union whose nodes are grouped by graph (PyG's ``batch``
vector is non-decreasing); ``graph_ptr`` is its CSR row pointer, graph ``g`` owning nodes
``graph_ptr[g]:graph_ptr[g + 1]``. On zero-centred integer codes the mean keeps ``FRAC_BITS``
fractional bits, so it is exact to 2^-9 of a code before the next requantize::

    mean_fixed[g] = round_half_up(sum_v codes[v] * 2^FRAC_BITS / count_g)    (0 if empty)

and its scale is the codes' scale / 2^FRAC_BITS. Add pooling is the exact int32 sum of the
codes (``segment_sums``), at the codes' scale. An empty graph pools to 0, as in PyG.
"""

from __future__ import annotations

import numpy as np

FRAC_BITS = 8


def graph_pointer(batch: np.ndarray, num_graphs: int) -> np.ndarray:
    """``graph_ptr`` (int64 ``[num_graphs + 1]``) of a non-decreasing ``batch`` vector."""
    counts = np.bincount(batch, minlength=num_graphs)
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


def segment_sums(values: np.ndarray, graph_ptr: np.ndarray) -> np.ndarray:
    """NumPy spec of the integer ``dqc.segment_sum``: int64 ``[G, C]`` from int ``[N, C]``."""
    prefix = np.zeros((len(values) + 1, values.shape[1]), np.int64)
    np.cumsum(values, axis=0, dtype=np.int64, out=prefix[1:])
    return prefix[graph_ptr[1:]] - prefix[graph_ptr[:-1]]


def mean_fixed(values: np.ndarray, graph_ptr: np.ndarray) -> np.ndarray:
    """NumPy spec of the integer ``dqc.segment_mean``: int64 ``[G, C]`` from int ``[N, C]``."""
    sums = segment_sums(values, graph_ptr)
    safe = np.maximum(np.diff(graph_ptr), 1)[:, None]
    return np.floor_divide(sums * (1 << (FRAC_BITS + 1)) + safe, 2 * safe)


def pool_codes(values: np.ndarray, graph_ptr: np.ndarray, pooling: str) -> tuple[np.ndarray, float]:
    """``(pooled, scale factor)`` of zero-centred codes: the integer ``mean``
    (``mean_fixed``, its scale the codes' / 2^FRAC_BITS) or ``add`` (sums, same scale)."""
    if pooling == "mean":
        return mean_fixed(values, graph_ptr), 1.0 / (1 << FRAC_BITS)
    return segment_sums(values, graph_ptr), 1.0
