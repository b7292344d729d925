"""Integer matmul with zero points: ``out[m, n] = sum_k (a[m, k] - za) (b[k, n] - zb)``.

Expanded so the inner product runs on the raw 8-bit codes (what VNNI / sdot accelerate)::

    sum_k a b  -  zb * rowsum(a)[m]  -  za * colsum(b)[n]  +  K za zb

``b`` is the weight, laid out ``[K, N]``; ``b_sum`` its column sums (a constant when ``b``
is, precomputed at compile time).
"""

from __future__ import annotations

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


def to_unsigned_padded(a: te.Tensor, width: int):
    """Codes as uint8 (int8 shifted by +128), zero-padded to ``width`` columns (VNNI input)."""
    m, k = a.shape
    shift = 128 if a.dtype == "int8" else 0

    def value(i, j):
        code = tirx.Cast("int32", a[i, tirx.min(j, k - 1)]) + shift
        return tirx.Select(j < k, tirx.Cast("uint8", code), tirx.const(0, "uint8"))

    return te.compute((m, width), value, name="to_unsigned")


def correct_zero_points(dot: te.Tensor, b_sum: te.Tensor, k: int, n: int, a_zero: int, b_zero: int):
    """``dot`` from the VNNI kernel (``dot[:, n]`` = row sums of ``a``) -> zero-centred
    products ``sum_k (a - za)(b - zb)`` of the first ``n`` columns."""
    za, zb = tirx.const(a_zero, "int32"), tirx.const(b_zero, "int32")
    offset = tirx.const(k * a_zero * b_zero, "int32")
    return te.compute(
        (dot.shape[0], n),
        lambda i, j: dot[i, j] - zb * dot[i, n] - za * b_sum[j] + offset,
        name="qmatmul",
    )
