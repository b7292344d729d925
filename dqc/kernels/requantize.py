"""Fixed-point requantization of int32 terms to codes (see ``dqc.fixed_point``).

``r = sum_i m_i (t_i - z_i) + B`` in int64, then ``clamp(round_fixed_to_code(r, S,
zero_point))``: to nearest, ties (within ``2^-TIE_BITS`` of a half) to the even code.
``requantize_value`` builds the scalar expression, shared by the elementwise kernel here and
the fused message kernels of ``dqc.kernels.spmm_csr``; ``requantize_product_value`` is GCN's
int32 message form.
"""

from __future__ import annotations

import tvm
from tvm import te, tirx

from dqc._tvm import Analyzer
from dqc.fixed_point import FixedPoint, UnitRatio, product_shift, tie_window


def _i64(value: int) -> tirx.PrimExpr:
    return tirx.const(value, "int64")


def _i32(value: int) -> tirx.PrimExpr:
    return tirx.const(value, "int32")


def _round(value: tirx.PrimExpr, shift: int, zero_point: int, dtype: str, bind=None):
    """``round_fixed_to_code(value, shift, zero_point) - zero_point`` (int32 or int64
    ``dtype``), branch-free: ``(value + r) >> shift``, where ``r`` depends on the parity of
    the code below. From an odd code a tie goes up (``r = half + window`` reaches it from
    the window's low edge); from an even code it stays (``r = half - window - 1`` rounds up
    only past the window). That parity is bit ``shift`` of ``value`` (flipped by an odd zero
    point), tested as ``value & 2^shift``, which LLVM moves to the sign bit for x86's
    blend: rounding costs four vector instructions. ``bind`` (``T.bind`` inside an IR
    builder) names ``value`` once for its two uses: written out twice, LLVM rewrites one
    copy's constants for the bit test and then computes the value twice."""
    half, window = 1 << (shift - 1), tie_window(shift)
    up, stay = tirx.const(half + window, dtype), tirx.const(half - window - 1, dtype)
    bits = tvm.DataType(dtype).bits
    bit = 1 << shift if shift < bits - 1 else -(1 << shift)  # bit 31 of an int32 is its sign
    if zero_point & 1:  # the code's parity is the other one
        up, stay = stay, up
    v = value if bind is None else bind(value)
    odd_below = (v & tirx.const(bit, dtype)) != tirx.const(0, dtype)
    return tirx.shift_right(v + tirx.Select(odd_below, up, stay), tirx.const(shift, dtype))


def widened(value: tirx.PrimExpr, dtype: str) -> tirx.PrimExpr:
    """``value`` as the wider ``dtype``. Where ``value`` narrows an expression whose bounds fit
    the narrow type (a clamped code), that expression itself: the cast there and back is the
    identity, which LLVM emits as a pack and an unpack of every vector."""
    if isinstance(value, tirx.Cast):
        inner, narrow = value.value, tvm.DataType(str(value.ty))
        wide = tvm.DataType(str(inner.ty))
        if narrow.type_code == wide.type_code == tvm.DataType("int8").type_code:
            bound = Analyzer().const_int_bound(inner)
            low, high = -(1 << (narrow.bits - 1)), (1 << (narrow.bits - 1)) - 1
            if wide.bits > narrow.bits and low <= bound.min_value and bound.max_value <= high:
                return inner if str(inner.ty) == dtype else tirx.Cast(dtype, inner)
    return tirx.Cast(dtype, value)


def requantize_value(
    terms: list[tirx.PrimExpr],
    zero_points: list[int],
    fixed: FixedPoint,
    zero_point: int,
    qmin: int,
    qmax: int,
    dtype: str,
    bias: tirx.PrimExpr | None = None,
    bind=None,
    multipliers: list[tirx.PrimExpr] | None = None,
) -> tirx.PrimExpr:
    """The code, as a ``dtype`` scalar expression, of one element (``bind``: see ``_round``;
    ``multipliers``: the element's int64 multipliers where they are per channel)."""
    if multipliers is None:
        multipliers = [_i64(m) for m in fixed.multipliers]
    acc = _i64(0)
    for term, z, m in zip(terms, zero_points, multipliers, strict=True):
        acc = acc + (widened(term, "int64") - _i64(z)) * m
    if bias is not None:
        acc = acc + bias
    code = _round(acc, fixed.shift, zero_point, "int64", bind) + _i64(zero_point)
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
    multipliers: te.Tensor | None = None,
):
    """Elementwise requantize of same-shape ``terms``; ``bias`` indexed by the last axis, as
    is ``multipliers`` (int32 ``[terms, C]``), the table of per-channel multipliers."""

    def code(*i):
        values = [t(*i) for t in terms]
        b = None if bias is None else bias(i[-1])
        m = None
        if multipliers is not None:
            m = [tirx.Cast("int64", multipliers[k, i[-1]]) for k in range(len(terms))]
        return requantize_value(
            values, zero_points, fixed, zero_point, qmin, qmax, dtype, b, multipliers=m
        )

    return te.compute(terms[0].shape, code, name="requantize")


def requantize_unit_ratio(
    terms: list[te.Tensor],
    form: UnitRatio,
    channel: te.Tensor | None,
    qmin: int,
    qmax: int,
    dtype: str,
):
    """``requantize`` of terms with multipliers of exactly 1, in int32 (``UnitRatio``): a sum,
    an add, an and, an or, an add and the clamp, on 16 lanes a vector instead of int64's 8.
    ``channel`` is ``[3, C]`` int32 (base, tie, up per channel of the last axis) or None for
    one channel, whose values are then constants."""

    def code(*i):
        if channel is None:
            base, tie, up = (_i32(int(v[0])) for v in (form.base, form.tie, form.up))
        else:
            base, tie, up = (channel[k, i[-1]] for k in range(3))
        total = base
        for t in terms:
            total = total + tirx.Cast("int32", t(*i))
        q = total + tirx.bitwise_or(tirx.bitwise_and(total, tie), up)
        return tirx.Cast(dtype, tirx.max(tirx.min(q, _i32(qmax)), _i32(qmin)))

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
    bind=None,
) -> tirx.PrimExpr:
    """``dqc.fixed_point.requantize_product`` of int32 codes ``a`` (per edge) and
    ``b - b_zero``, as ``w * b - w * b_zero`` (the second product is per edge; wrapping
    intermediates cancel). ``clamp=False`` leaves out the clamp, for codes ``a``
    that ``dqc.fixed_point.clamp_free_codes`` shows never reach it; ``centered`` gives the
    code minus ``zero_point``; ``bind``: see ``_round``."""
    (m,), shift = fixed.multipliers, fixed.shift
    t = product_shift(fixed)
    w = tirx.Cast("int64", a) * _i64(m)
    if shift > t:
        w = tirx.shift_right(w + _i64(1 << (shift - t - 1)), _i64(shift - t))
    w = tirx.Cast("int32", w)
    value = w * b - w * _i32(b_zero) if b_zero else w * b
    r = _round(value, t, zero_point, "int32", bind)
    low, high = qmin - zero_point, qmax - zero_point
    if clamp:
        r = tirx.max(tirx.min(r, _i32(high)), _i32(low))
    return tirx.Cast(dtype, r if centered else r + _i32(zero_point))
