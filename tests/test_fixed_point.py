"""The fixed-point requantize spec: multipliers, shifts, rounding and ties."""

import numpy as np
import pytest
import torch

from dqc.fake_quant import fake_quantize
from dqc.fixed_point import (
    CODE_BOUND,
    MULTIPLIER_BITS,
    TIE_BITS,
    FixedPoint,
    UnitRatio,
    clamp_free_codes,
    product_shift,
    requantize,
    requantize_product,
    tie_window,
)
from dqc.qparams import QParams, round_to_code


def test_multipliers_keep_30_bits_and_share_a_shift():
    fixed = FixedPoint.from_reals([0.0123, 0.5])
    assert max(fixed.multipliers) < 2**MULTIPLIER_BITS <= 2 * max(fixed.multipliers)
    for real, m in zip([0.0123, 0.5], fixed.multipliers, strict=True):
        assert abs(m / 2**fixed.shift - real) <= 2.0 ** -(fixed.shift + 1)


def test_shift_limits():
    assert FixedPoint.from_reals([1e-9]).shift == 59  # 1e-9 * 2^59 ~ 5.8e8 < 2^30
    assert FixedPoint.from_reals([1e-9], 100.0).shift == 53  # |B| = 100 * 2^S < 2^60
    assert FixedPoint.from_reals([1e-30]).shift == 62  # capped


def test_invalid_multipliers():
    with pytest.raises(ValueError, match="too large"):
        FixedPoint.from_reals([2.0**40])
    with pytest.raises(ValueError, match="finite"):
        FixedPoint.from_reals([float("inf")])


def test_rounds_to_nearest_with_ties_to_even_and_clamps():
    fixed = FixedPoint.from_reals([0.5])  # q = round(t / 2)
    t = np.array([-5, -3, -1, 1, 3, 5, 7, 1000])
    # t/2 = -2.5 -1.5 -0.5 0.5 1.5 2.5 3.5 500 -> half to even: -2 -2 0 0 2 2 4 | clamp 127
    out = requantize([t], [0], fixed, zero_point=0, qmin=-128, qmax=127)
    assert out.tolist() == [-2, -2, 0, 0, 2, 2, 4, 127]


def test_near_ties_from_inexact_ratios_round_to_even():
    # 15/14 is not a binary fraction: 7 * 15/14 = 7.5 lands a few 2^-S off the tie.
    fixed = FixedPoint.from_reals([15 / 14])
    out = requantize([np.array([7, -7, 21])], [0], fixed, 0, -128, 127)
    assert out.tolist() == [8, -8, 22]  # 7.5 -> 8, -7.5 -> -8, 22.5 -> 22


def test_per_channel_multipliers_share_one_shift():
    # channel 0 halves, channel 1 quarters, channel 2 triples; one scalar term beside them
    fixed = FixedPoint.from_reals([np.array([0.5, 0.25, 3.0]), 1.0])
    assert fixed.per_channel and fixed.shift == FixedPoint.from_reals([3.0]).shift
    t = np.array([[5, 6, 7], [-3, -2, 1]])
    ones = np.ones_like(t)
    out = requantize([t, ones], [0, 0], fixed, zero_point=0, qmin=-128, qmax=127)
    # 2.5+1 -> 4 (tie to even), 1.5+1 -> 2 (tie), 21+1; -1.5+1 -> 0 (tie), -0.5+1 -> 0, 3+1
    assert out.tolist() == [[4, 2, 22], [0, 0, 4]]
    assert UnitRatio.of(fixed, [0, 0], 0, None) is None


def test_terms_zero_points_and_bias():
    fixed = FixedPoint.from_reals([0.25, 2.0], 3.0)
    a, b = np.array([10, 14]), np.array([3, 4])
    bias = fixed.bias(np.array([1.5, -3.0]))
    # 0.25 (a - 2) + 2 (b - 1) + bias = [2 + 4 + 1.5, 3 + 6 - 3] = [7.5, 6]; + zero 5 gives
    # [12.5 -> 12 (the even code), 11]
    out = requantize([a, b], [2, 1], fixed, 5, 0, 255, bias)
    assert out.tolist() == [12, 11]


@pytest.mark.parametrize("zero_point", [-3, 0, 5])
def test_ties_go_to_the_even_code_as_the_fake_quantizer_sends_them(zero_point):
    """Requantizing grid values equals fake-quantizing them: DQ rounds x / scale + zero_point,
    so a tie goes to the even code, which with an odd zero point is not where rounding
    x / scale first would send it."""
    source = np.arange(-40, 41)  # codes of a grid with scale 0.25 and zero point 0
    target = QParams(0.5, zero_point, 8, True)  # every odd source code lands on a tie
    fixed = FixedPoint.from_reals([0.25 / 0.5])
    out = requantize([source], [0], fixed, target.zero_point, target.qmin, target.qmax)
    fake = fake_quantize(torch.from_numpy(source * 0.25).float(), target, deployed=True)
    np.testing.assert_array_equal(out, fake.numpy() / target.scale + zero_point)
    assert np.all(out[source % 2 == 1] % 2 == 0)


@pytest.mark.parametrize("multiplier", [1e-4, 0.0123, 0.37, 1.0, 3.9])
def test_product_requantize_is_int32_safe_and_near_exact(multiplier):
    fixed = FixedPoint.from_reals([multiplier])
    t = product_shift(fixed)
    (m,), s = fixed.multipliers, fixed.shift
    w_max = (CODE_BOUND * m >> (s - t)) + 1
    # no int32 overflow anywhere, rounding offset included
    assert w_max * CODE_BOUND + (1 << (t - 1)) + tie_window(t) < 2**31
    codes = np.arange(-CODE_BOUND, CODE_BOUND + 1)
    a, b = np.meshgrid(codes, codes)  # every pair of centred 8-bit codes, extremes included
    out = requantize_product(a, b, fixed, 0, -(2**31), 2**31 - 1)
    exact = multiplier * a.astype(np.float64) * b
    # The same rounding rule on the exact product: only values right at the tie window's
    # edges may land on the other side of one.
    off = out != round_to_code(exact)
    distance_to_edge = np.abs(np.abs(exact - np.floor(exact) - 0.5) - 2.0**-TIE_BITS)
    assert np.all(distance_to_edge[off] <= 0.01)
    assert np.abs(out - exact).max() <= 0.5 + 2.0**-TIE_BITS + 0.01


def test_product_requantize_zero_point_and_clamp():
    fixed = FixedPoint.from_reals([0.5])  # q = round(zero + a * b / 2), ties to even codes
    a, b = np.array([3, 3, -3, 100]), np.array([1, 5, 1, 100])
    out = requantize_product(a, b, fixed, zero_point=10, qmin=0, qmax=255)
    assert out.tolist() == [12, 18, 8, 255]  # 11.5 -> 12, 17.5 -> 18, 8.5 -> 8, clamp


@pytest.mark.parametrize("multiplier", [0.0004, 0.013, 0.37])
def test_clamp_free_codes_never_clamp_and_are_the_widest(multiplier):
    fixed, zero_point, qmin, qmax = FixedPoint.from_reals([multiplier]), 3, -128, 127
    a_range, b_range = (-120, 135), (-133, 122)
    low, high = clamp_free_codes(fixed, zero_point, qmin, qmax, a_range, b_range)
    a = np.arange(a_range[0], a_range[1] + 1)[:, None]
    b = np.arange(b_range[0], b_range[1] + 1)[None, :]
    unclamped = requantize_product(a, b, fixed, zero_point, -(2**31), 2**31 - 1)
    reaches = ((unclamped < qmin) | (unclamped > qmax)).any(axis=1)
    inside = (a[:, 0] >= low) & (a[:, 0] <= high)
    assert not reaches[inside].any()
    assert low == a_range[0] or reaches[a[:, 0] == low - 1].all()
    assert high == a_range[1] or reaches[a[:, 0] == high + 1].all()


def test_clamp_free_codes_none_when_zero_is_clamped():
    fixed = FixedPoint.from_reals([0.5])
    assert clamp_free_codes(fixed, 200, 0, 127, (-10, 10), (-10, 10)) is None
