"""Fixed-point requantization of int32 terms to codes (see ``dqc.fixed_point``).

``r = sum_i m_i (t_i - z_i) + B`` in int64, then ``clamp(zero_point + round(r / 2^S))`` with
ties (within ``2^-20``) to even. ``bias`` is an int64 tensor broadcast over the trailing axis
(or ``None``).
"""

from __future__ import annotations

from tvm import te, tirx

from dqc.fixed_point import FixedPoint, tie_window


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
        acc = tirx.const(0, "int64")
        for term, z, m in zip(terms, zero_points, fixed.multipliers, strict=True):
            value = tirx.Cast("int64", term(*i)) - tirx.const(z, "int64")
            acc = acc + value * tirx.const(m, "int64")
        if bias is not None:
            acc = acc + bias(i[-1])
        floor = tirx.shift_right(acc, tirx.const(fixed.shift, "int64"))
        frac = acc - tirx.shift_left(floor, tirx.const(fixed.shift, "int64"))
        off = frac - tirx.const(1 << (fixed.shift - 1), "int64")
        window = tirx.const(tie_window(fixed.shift), "int64")
        tie = tirx.all(off <= window, off >= -window)
        up = tirx.Select(
            tie,
            floor & tirx.const(1, "int64"),
            tirx.Select(off > 0, tirx.const(1, "int64"), tirx.const(0, "int64")),
        )
        out = floor + up + tirx.const(zero_point, "int64")
        out = tirx.max(tirx.min(out, tirx.const(qmax, "int64")), tirx.const(qmin, "int64"))
        return tirx.Cast(dtype, out)

    return te.compute(shape, code, name="requantize")
