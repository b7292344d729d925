"""Fixed-point requantization of int32 terms to codes (see ``dqc.fixed_point``).

``r = sum_i m_i (t_i - z_i) + B`` in int64, then ``clamp(round_fixed_to_code(r, S,
zero_point))``: to nearest, ties (within ``2^-TIE_BITS`` of a half) to the even code.
``requantize_value`` builds the scalar expression, shared by the elementwise kernel here and
the fused message kernels of ``dqc.kernels.spmm_csr``; ``requantize_product_value`` is GCN's
int32 message form.
"""

from __future__ import annotations

from tvm import te, tirx

from dqc.fixed_point import FixedPoint, product_shift, tie_window


def _i64(value: int) -> tirx.PrimExpr:
    return tirx.const(value, "int64")


def _i32(value: int) -> tirx.PrimExpr:
    return tirx.const(value, "int32")


def _rounding_offset(shift: int) -> int:
    """What ``_round_biased`` expects added to a value in units of ``2^-shift``."""
    return (1 << (shift - 1)) + tie_window(shift)


def _round_biased(biased: tirx.PrimExpr, shift: int, zero_point: int, dtype: str):
    """``round_fixed_to_code(v, shift, zero_point) - zero_point`` (int32 or int64 ``dtype``)
    from ``biased = v + _rounding_offset(shift)``: ``c = biased >> shift`` rounds every value
    of the tie window up, and those (the low bits at most twice the window) drop back by one
    where ``c + zero_point`` is odd. Branch-free, for vector units."""
    window = tie_window(shift)
    c = tirx.shift_right(biased, tirx.const(shift, dtype))
    low = biased & tirx.const((1 << shift) - 1, dtype)
    odd = (c + tirx.const(zero_point & 1, dtype)) & tirx.const(1, dtype)
    return c - tirx.Select(low <= tirx.const(2 * window, dtype), odd, tirx.const(0, dtype))


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
    acc = _i64(_rounding_offset(fixed.shift))
    for term, z, m in zip(terms, zero_points, fixed.multipliers, strict=True):
        acc = acc + (tirx.Cast("int64", term) - _i64(z)) * _i64(m)
    if bias is not None:
        acc = acc + bias
    code = _round_biased(acc, fixed.shift, zero_point, "int64") + _i64(zero_point)
    return tirx.Cast(dtype, tirx.max(tirx.min(code, _i64(qmax)), _i64(qmin)))


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
    centered: bool = False,
) -> tirx.PrimExpr:
    """``dqc.fixed_point.requantize_product`` of int32 codes ``a`` (per edge) and
    ``b - b_zero``. The zero point goes into the per-edge rounding term, ``w * b +
    (offset - w * b_zero)``: one instruction less per feature, and the same int32 sum
    (wrapping intermediates cancel). ``clamp=False`` leaves out the clamp, for codes ``a``
    that ``dqc.fixed_point.clamp_free_codes`` shows never reach it; ``centered`` gives the
    code minus ``zero_point``."""
    (m,), shift = fixed.multipliers, fixed.shift
    t = product_shift(fixed)
    w = tirx.Cast("int64", a) * _i64(m)
    if shift > t:
        w = tirx.shift_right(w + _i64(1 << (shift - t - 1)), _i64(shift - t))
    w = tirx.Cast("int32", w)
    offset = _i32(_rounding_offset(t))
    if b_zero:
        offset = offset - w * _i32(b_zero)
    r = _round_biased(w * b + offset, t, zero_point, "int32")
    low, high = qmin - zero_point, qmax - zero_point
    if clamp:
        r = tirx.max(tirx.min(r, _i32(high)), _i32(low))
    return tirx.Cast(dtype, r if centered else r + _i32(zero_point))
