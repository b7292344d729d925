"""Integer matmul with zero points: ``out[m, n] = sum_k (a[m, k] - za) (b[k, n] - zb)``.

Expanded so the inner product runs on the raw 8-bit codes (what VNNI / sdot accelerate)::

    sum_k a b  -  zb * rowsum(a)[m]  -  za * colsum(b)[n]  +  K za zb

``b`` is the weight, laid out ``[K, N]``; ``b_sum`` its column sums (a constant when ``b``
is, precomputed at compile time).
"""

from __future__ import annotations

import numpy as np
from tvm import te, tirx


def qmatmul(a: te.Tensor, b: te.Tensor, b_sum: te.Tensor, a_zero: int, b_zero: int):
    m, k = a.shape
    n = b.shape[1]
    rk = te.reduce_axis((0, k), name="k")
    dot = te.compute(
        (m, n),
        lambda i, j: te.sum(tirx.Cast("int32", a[i, rk]) * tirx.Cast("int32", b[rk, j]), axis=rk),
        name="dot",
    )
    if a_zero == 0 and b_zero == 0:
        return dot
    rk2 = te.reduce_axis((0, k), name="k2")
    a_sum = te.compute(
        (m,), lambda i: te.sum(tirx.Cast("int32", a[i, rk2]), axis=rk2), name="a_sum"
    )
    za, zb = tirx.const(a_zero, "int32"), tirx.const(b_zero, "int32")
    offset = tirx.Cast("int32", k) * za * zb
    return te.compute(
        (m, n),
        lambda i, j: dot[i, j] - zb * a_sum[i] - za * b_sum[j] + offset,
        name="qmatmul",
    )


def pack_weights(
    b: np.ndarray, lanes: int, block_multiple: int = 1, per_word: int = 4
) -> tuple[np.ndarray, int]:
    """Weights ``b`` [K, N] int8 in the layout of the dot-product kernels (VNNI, sdot: 4 int8
    per word; AVX2 ``vpmaddwd``: ``per_word=2``, as int16).

    Returns (packed ``[blocks, G, lanes, per_word]`` flattened, blocks): K is padded to
    ``per_word G``, the columns to ``lanes * blocks`` (``blocks`` a multiple of
    ``block_multiple``), and column N holds ones, so the kernel's output column N is the row
    sum of the activations (the zero-point correction for free). One ``(block, group)`` is
    ``per_word lanes`` contiguous elements: one vector load per instruction.
    """
    k, n = b.shape
    groups = -(-k // per_word)
    blocks = -(-(n // lanes + 1) // block_multiple) * block_multiple  # room for the ones
    padded = np.zeros((groups * per_word, blocks * lanes), np.int8 if per_word == 4 else np.int16)
    padded[:k, :n] = b
    padded[:k, n] = 1
    packed = padded.reshape(groups, per_word, blocks, lanes).transpose(2, 0, 3, 1)
    return np.ascontiguousarray(packed).reshape(-1), blocks


def recode_shift(source: str, dtype: str) -> int:
    """What ``recode_padded`` adds to ``source`` codes for a ``dtype`` kernel (the zero point
    moves by as much): uint8 and int16 kernels take int8 codes shifted by +128, so the
    -128 of a range starting at 0 (bag-of-words zeros) becomes 0, which they skip; the int8
    kernel takes uint8 codes shifted by -128."""
    if source == "int8" and dtype in ("uint8", "int16"):
        return 128
    return -128 if source == "uint8" and dtype == "int8" else 0


def recode_padded(a: te.Tensor, width: int, dtype: str):
    """Codes as ``dtype`` (shifted by ``recode_shift``), zero-padded to ``width`` columns: the
    input of the VNNI (uint8), sdot (int8) and AVX2 (int16) kernels."""
    m, k = a.shape
    shift = recode_shift(a.dtype, dtype)

    def value(i, j):
        code = tirx.Cast("int32", a[i, tirx.min(j, k - 1)]) + shift
        return tirx.Select(j < k, tirx.Cast(dtype, code), tirx.const(0, dtype))

    return te.compute((m, width), value, name=f"to_{dtype}")


def correct_zero_points(dot: te.Tensor, b_sum: te.Tensor, k: int, n: int, a_zero: int, b_zero: int):
    """``dot`` from a dot-product kernel (``dot[:, n]`` = row sums of ``a``) -> zero-centred
    products ``sum_k (a - za)(b - zb)`` of the first ``n`` columns."""
    za, zb = tirx.const(a_zero, "int32"), tirx.const(b_zero, "int32")
    offset = tirx.const(k * a_zero * b_zero, "int32")
    return te.compute(
        (dot.shape[0], n),
        lambda i, j: dot[i, j] - zb * dot[i, n] - za * b_sum[j] + offset,
        name="qmatmul",
    )
