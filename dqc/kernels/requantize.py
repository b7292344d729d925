"""Fixed-point requantization of int32 terms to codes (see ``dqc.fixed_point``).

``q = clamp(zero_point + ((sum_i m_i (t_i - z_i) + B + 2^(S-1)) >> S), qmin, qmax)`` in int64.
``bias`` is an int64 tensor broadcast over the trailing axis (or ``None``).
"""

from __future__ import annotations

from tvm import te, tirx

from dqc.fixed_point import FixedPoint


def requantize(
    terms: list[te.Tensor],
    zero_points: list[int],
    fixed: FixedPoint,
    zero_point: int,
    qmin: int,
    qmax: int,
    dtype: str,
    bias: te.Tensor | None = None,
):
    shape = terms[0].shape

    def code(*i):
        acc = tirx.const(1 << (fixed.shift - 1), "int64")
        for term, z, m in zip(terms, zero_points, fixed.multipliers, strict=True):
            value = tirx.Cast("int64", term(*i)) - tirx.const(z, "int64")
            acc = acc + value * tirx.const(m, "int64")
        if bias is not None:
            acc = acc + bias(i[-1])
        rounded = tirx.shift_right(acc, tirx.const(fixed.shift, "int64"))
        out = rounded + tirx.const(zero_point, "int64")
        out = tirx.max(tirx.min(out, tirx.const(qmax, "int64")), tirx.const(qmin, "int64"))
        return tirx.Cast(dtype, out)

    return te.compute(shape, code, name="requantize")
