"""Integer requantization: the exact arithmetic every dqc backend and the reference share.

A requantize maps int32 terms ``t_i`` (with zero points ``z_i``) and real multipliers
``M_i`` (ratios of scales) plus an optional real per-channel bias ``c`` to codes::

    r = sum_i m_i * (t_i - z_i) + B                  (int64, units of 2^-S)
    q = clamp(round_fixed_to_code(r, S, zero_point), qmin, qmax)

with ``m_i = round(M_i * 2^S)`` and ``B = round(c * 2^S)``. A multiplier may be a vector, one
per channel of the last axis (a per-channel scale such as a BatchNorm kept after a ReLU);
all share the one shift. ``round_fixed_to_code`` is the one
rounding rule of the integer program, the one the fake quantizer uses in eval mode
(``dqc.qparams.round_to_code``): ``zero_point + r / 2^S`` to nearest, with a value within
``2^-TIE_BITS`` (``2^-10``) of a half counted as a tie that goes to the even code. The zero
point is part of the rounded value, as Degree-Quant rounds ``x / scale + zero_point``: with an
odd zero point a tie goes the other way than rounding ``r`` alone would send it.

Why a window: ties are common, not rare. Requantizing codes between quantizers whose ranges
derive from each other gives exact scale ratios such as 15/14 (a percentile of a quantized
tensor is a grid value). The fake quantizer computes such an exact tie in float32, a few ulps
off the half (up to ~2^-14 for an INT8 code near 255, more after long float sums), so plain
rounding would send it up or down by noise while the integer program always picks the even
code. With the window both call the same values ties; they can disagree only on values
within float noise of the window's edges, which nothing makes common.

``S`` is the largest shift keeping every ``|m_i| < 2^30`` (so each int64 product of a 31-bit
term stays below 2^61) and ``|B| < 2^60``, and at most 62. The multipliers carry 30
significant bits, so results differ from exact arithmetic only within ~1e-9 of the window's
edges.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MULTIPLIER_BITS = 30
MAX_SHIFT = 62
TIE_BITS = 10  # |r / 2^S - (k + 1/2)| <= 2^-TIE_BITS counts as a tie


def tie_window(shift: int) -> int:
    """Half-width, in units of 2^-shift, of the band around a half that counts as a tie
    (0, exact halves only, when 2^-shift is coarser than the window)."""
    return 1 << (shift - TIE_BITS) if shift > TIE_BITS else 0


def round_fixed_to_code(acc: np.ndarray, shift: int, zero_point: int) -> np.ndarray:
    """``zero_point + acc / 2^shift`` (``acc`` int64) rounded to the nearest code, a value
    within the tie window of a half going to the even code (see the module docstring)."""
    floor = acc >> shift
    frac = acc - (floor << shift)
    half, window = 1 << (shift - 1), tie_window(shift)
    tie_up = (floor + zero_point) & 1  # an odd code below the tie: go up to the even one
    up = np.where(np.abs(frac - half) <= window, tie_up, (frac > half).astype(np.int64))
    return floor + up + zero_point


@dataclass(frozen=True)
class FixedPoint:
    multipliers: tuple  # per term: an int, or an int64 array with one per channel
    shift: int

    @property
    def per_channel(self) -> bool:
        return any(np.ndim(m) for m in self.multipliers)

    @classmethod
    def from_reals(cls, reals: list, bias_bound: float = 0.0) -> FixedPoint:
        """Integer multipliers with one shared shift for real multipliers ``reals`` (floats, or
        float64 arrays of per-channel values) and a bias of magnitude at most ``bias_bound``
        (output units)."""
        values = np.concatenate([np.ravel(np.asarray(r, np.float64)) for r in reals])
        largest = float(np.abs(values).max())
        if not np.isfinite(values).all() or largest == 0:
            raise ValueError(f"requantize multipliers must be finite and not all 0: {reals}")
        # |r| * 2^S < 2^30  <=>  S < 30 - log2|r|
        shift = min(MAX_SHIFT, MULTIPLIER_BITS - 1 - math.floor(math.log2(largest)))
        if bias_bound > 0:
            shift = min(shift, 59 - math.floor(math.log2(bias_bound)))
        if shift < 1:
            raise ValueError(f"requantize multiplier {largest} is too large (>= 2^29)")
        return cls(tuple(_fixed(r, shift) for r in reals), shift)

    def bias(self, reals: np.ndarray) -> np.ndarray:
        """A real bias (in output units) in this shift's fixed point, int64."""
        return np.round(np.asarray(reals, np.float64) * 2.0**self.shift).astype(np.int64)


def _fixed(real, shift: int):
    """``round(real * 2^shift)``: an int for a float, an int64 array for an array."""
    if np.ndim(real):
        return np.round(np.asarray(real, np.float64) * 2.0**shift).astype(np.int64)
    return round(real * 2.0**shift)


def requantize(
    terms: list[np.ndarray],
    zero_points: list[int],
    fixed: FixedPoint,
    zero_point: int,
    qmin: int,
    qmax: int,
    bias: np.ndarray | None = None,
) -> np.ndarray:
    """NumPy reference of ``dqc.requantize`` after ``FoldScales``; returns int32 codes."""
    acc = np.zeros(np.broadcast_shapes(*(t.shape for t in terms)), np.int64)
    for term, z, m in zip(terms, zero_points, fixed.multipliers, strict=True):
        acc += (term.astype(np.int64) - z) * m
    if bias is not None:
        acc += bias
    return np.clip(round_fixed_to_code(acc, fixed.shift, zero_point), qmin, qmax).astype(np.int32)


@dataclass(frozen=True)
class UnitRatio:
    """``requantize`` of terms whose multipliers are all exactly 1 (``m_i = 2^S``: the same
    scale in and out, as when a bias is added to codes), as int32 additions. Then
    ``r = X * 2^S + B`` with ``X = sum_i (t_i - z_i)``: ``r``'s fraction is ``B``'s, a
    per-channel constant, so rounding is a per-channel offset, except on channels where
    ``B``'s fraction is a tie, which round ``X + base`` up to even::

        q = clamp(s + ((s & tie) | up)),   s = sum_i t_i + base

    exactly ``requantize``'s result, without its int64 products."""

    base: np.ndarray  # int64 [C] (or [1] without a bias)
    tie: np.ndarray  # 0 / 1: the channel's fraction is a tie
    up: np.ndarray  # 0 / 1: the channel's fraction rounds up

    @classmethod
    def of(
        cls, fixed: FixedPoint, zero_points: list[int], zero_point: int, bias: np.ndarray | None
    ) -> UnitRatio | None:
        """The form for ``requantize(..., fixed, zero_point, bias)``, or None if a multiplier
        is not 1 or an offset is too large for int32 sums of 16-bit codes."""
        shift = fixed.shift
        if fixed.per_channel or any(m != 1 << shift for m in fixed.multipliers):
            return None
        b = np.zeros(1, np.int64) if bias is None else np.asarray(bias, np.int64).reshape(-1)
        whole = b >> shift
        fraction = b - (whole << shift)
        half = 1 << (shift - 1)
        tie = np.abs(fraction - half) <= tie_window(shift)
        base = whole + zero_point - sum(zero_points)
        if np.abs(base).max() >= 2**24:
            return None
        return cls(base, tie.astype(np.int64), (~tie & (fraction > half)).astype(np.int64))


# |code - zero_point| of any code stored in 8 bits (INT8 or INT4), whatever its zero point.
CODE_BOUND = 255


def product_shift(fixed: FixedPoint) -> int:
    """The shift ``T`` of ``requantize_product``: the largest ``T <= S`` for which every
    ``w * b`` plus the rounding offset (``|a|, |b| <= CODE_BOUND``) fits in int32."""
    (m,), shift = fixed.multipliers, fixed.shift
    for t in range(shift, 0, -1):
        w_max = (CODE_BOUND * abs(m) >> (shift - t)) + 1
        if w_max * CODE_BOUND + (1 << (t - 1)) + tie_window(t) < 2**31:
            return t
    raise ValueError(f"requantize multiplier {m} / 2^{shift} is too large for int32 products")


def edge_factors(a: np.ndarray, fixed: FixedPoint) -> np.ndarray:
    """``w = round(a * m / 2^(S - T))`` (int64) of per-edge codes ``a``: the edge's factor
    of ``requantize_product``, in units of ``2^-T``."""
    (m,), shift = fixed.multipliers, fixed.shift
    t = product_shift(fixed)
    a = a.astype(np.int64)
    return a * m if shift == t else (a * m + (1 << (shift - t - 1))) >> (shift - t)


def requantize_product(
    a: np.ndarray, b: np.ndarray, fixed: FixedPoint, zero_point: int, qmin: int, qmax: int
) -> np.ndarray:
    """Codes of ``M * a * b`` (``M = m / 2^S``) for zero-centred 8-bit codes ``a`` (one per
    edge) and ``b`` (per edge and feature), in int32 arithmetic the vector units run at full
    width: the edge's factor is scaled once (``edge_factors``), then
    ``q = clamp(round_fixed_to_code(w * b, T, zero_point))``, whose ``w * b`` fits int32.
    Rounding ``w`` moves ``M * a * b`` by at most ``|b| / 2^(T+1)``, a few hundred-thousandths
    of a code for GCN's messages, so results differ from ``round(M * a * b)`` only that close
    to the tie window's edges. GCN's messages use it (``dqc.kernels.spmm_csr``)."""
    w = edge_factors(a, fixed)
    codes = round_fixed_to_code(w * b.astype(np.int64), product_shift(fixed), zero_point)
    return np.clip(codes, qmin, qmax).astype(np.int32)


def clamp_free_codes(
    fixed: FixedPoint,
    zero_point: int,
    qmin: int,
    qmax: int,
    a_range: tuple[int, int],
    b_range: tuple[int, int],
) -> tuple[int, int] | None:
    """The interval of codes ``a`` (within ``a_range``, around 0) whose ``requantize_product``
    with any ``b`` in ``b_range`` never reaches the clamp, or ``None``. Kernels skip the
    clamp on edges whose code lies in it; the result is the same."""
    a = np.arange(a_range[0], a_range[1] + 1, dtype=np.int64)
    w, t = edge_factors(a, fixed), product_shift(fixed)
    # The rounded w * b / 2^T is monotone in b, so its extremes are at b_range's ends.
    ends = [round_fixed_to_code(w * b, t, zero_point) for b in b_range]
    low, high = np.minimum(*ends), np.maximum(*ends)
    free = (low >= qmin) & (high <= qmax)
    zero = -a_range[0]
    if not 0 <= zero < a.size or not free[zero]:
        return None
    first, last = zero, zero
    while first > 0 and free[first - 1]:
        first -= 1
    while last + 1 < a.size and free[last + 1]:
        last += 1
    return int(a[first]), int(a[last])
