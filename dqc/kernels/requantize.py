"""Fixed-point requantization of int32 terms to codes (see ``dqc.fixed_point``).

``r = sum_i m_i (t_i - z_i) + B`` in int64, then ``clamp(zero_point + round(r / 2^S))`` with
ties (within ``2^-20``) to even. ``requantize_value`` builds the scalar expression, shared by
the elementwise kernel here and the fused message kernels of ``dqc.kernels.spmm_csr``.
"""

from __future__ import annotations

from tvm import te, tirx

from dqc.fixed_point import FixedPoint, product_shift, tie_window


def _i64(value: int) -> tirx.PrimExpr:
    return tirx.const(value, "int64")


def _i32(value: int) -> tirx.PrimExpr:
    return tirx.const(value, "int32")


def requantize_value(
    terms: list[tirx.PrimExpr],
    zero_points: list[int],
    fixed: FixedPoint,
    zero_point: int,
    qmin: int,
    qmax: int,
    dtype: str,
    bias: tirx.PrimExpr | None = None,
) -> tirx.PrimExpr:
    """The code, as a ``dtype`` scalar expression, of one element."""
    acc = _i64(0)
    for term, z, m in zip(terms, zero_points, fixed.multipliers, strict=True):
        acc = acc + (tirx.Cast("int64", term) - _i64(z)) * _i64(m)
    if bias is not None:
        acc = acc + bias
    floor = tirx.shift_right(acc, _i64(fixed.shift))
    frac = acc & _i64((1 << fixed.shift) - 1)  # acc - floor * 2^S, in [0, 2^S)
    half, window = 1 << (fixed.shift - 1), tie_window(fixed.shift)
    up = tirx.Select(
        frac > _i64(half + window),
        _i64(1),
        tirx.Select(frac < _i64(half - window), _i64(0), floor & _i64(1)),
    )
    out = tirx.max(tirx.min(floor + up + _i64(zero_point), _i64(qmax)), _i64(qmin))

    return tirx.Cast(dtype, out)


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
    """Elementwise requantize of same-shape ``terms``; ``bias`` indexed by the last axis."""

    def code(*i):
        values = [t(*i) for t in terms]
        b = None if bias is None else bias(i[-1])
        return requantize_value(values, zero_points, fixed, zero_point, qmin, qmax, dtype, b)

    return te.compute(terms[0].shape, code, name="requantize")


def requantize_product_value(
    a: tirx.PrimExpr,
    b: tirx.PrimExpr,
    fixed: FixedPoint,
    zero_point: int,
    qmin: int,
    qmax: int,
    dtype: str,
    b_zero: int = 0,
    clamp: bool = True,
) -> tirx.PrimExpr:
    """``dqc.fixed_point.requantize_product`` of int32 codes ``a`` (per edge) and
    ``b - b_zero``. The zero point goes into the per-edge rounding term, ``w * b + (half -
    w * b_zero)``: one instruction less per feature, and the same int32 sum (wrapping
    intermediates cancel). ``clamp=False`` leaves out the clamp, for codes ``a`` that
    ``dqc.fixed_point.clamp_free_codes`` shows never reach it."""
    (m,), shift = fixed.multipliers, fixed.shift
    t = product_shift(fixed)
    w = tirx.Cast("int64", a) * _i64(m)
    if shift > t:
        w = tirx.shift_right(w + _i64(1 << (shift - t - 1)), _i64(shift - t))
    w = tirx.Cast("int32", w)
    offset = _i32(1 << (t - 1)) - w * _i32(b_zero) if b_zero else _i32(1 << (t - 1))
    r = tirx.shift_right(w * b + offset, _i32(t)) + _i32(zero_point)
    if clamp:
        r = tirx.max(tirx.min(r, _i32(qmax)), _i32(qmin))
    return tirx.Cast(dtype, r)
