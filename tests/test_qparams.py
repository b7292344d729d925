"""QParams.from_range pinned to hand-computed values of DQ's get_qparams."""

import numpy as np
import pytest

from dqc.qparams import FP32_EPS, QParams, integer_bounds


def test_integer_bounds():
    assert integer_bounds(8, True) == (-128, 127)
    assert integer_bounds(8, False) == (0, 255)
    assert integer_bounds(4, True) == (-8, 7)
    assert integer_bounds(4, False) == (0, 15)


def test_signed_int8_range_with_both_signs():
    # scale = (2.55 - -1.0) / 255 = 0.013921568...; zero = -128 - round(-1.0 / scale)
    #       = -128 - round(-71.83...) = -128 + 72 = -56
    qp = QParams.from_range(-1.0, 2.55, 8, signed=True)
    assert qp.scale == pytest.approx(3.55 / 255, rel=1e-7)
    assert qp.scale == float(np.float32(qp.scale))  # float32 exact
    assert qp.zero_point == -56


def test_range_is_widened_to_contain_zero():
    # [0.5, 2.0] -> [0, 2.0]: scale 2/255, zero point = qmin - round(0) = -128
    qp = QParams.from_range(0.5, 2.0, 8, signed=True)
    assert qp.scale == pytest.approx(2.0 / 255, rel=1e-7)
    assert qp.zero_point == -128
    # [-3, -1] -> [-3, 0]: unsigned 4 bit: scale 3/15 = 0.2, zero = 0 - round(-15) = 15
    qp = QParams.from_range(-3.0, -1.0, 4, signed=False)
    assert qp.scale == pytest.approx(0.2, rel=1e-7)
    assert qp.zero_point == 15


def test_unsigned_int4_and_round_half_to_even():
    # [-0.5, 7.0]: scale 7.5 / 15 = 0.5; -0.5 / 0.5 = -1 -> zero = 1
    assert QParams.from_range(-0.5, 7.0, 4, signed=False).zero_point == 1
    # [-0.25, 7.25]: scale 0.5; min/scale = -0.5 rounds (half to even) to -0 -> zero 0
    qp = QParams.from_range(-0.25, 7.25, 4, signed=False)
    assert (qp.scale, qp.zero_point) == (0.5, 0)
    # [-0.75, 6.75]: min/scale = -1.5 rounds to -2 -> zero 2
    assert QParams.from_range(-0.75, 6.75, 4, signed=False).zero_point == 2


def test_degenerate_and_tiny_ranges():
    assert QParams.from_range(0.0, 0.0, 8, True) == QParams(1.0, 0, 8, True)
    tiny = QParams.from_range(0.0, 1e-12, 8, True)
    assert tiny.scale == pytest.approx(FP32_EPS)
    with pytest.raises(ValueError, match="finite"):
        QParams.from_range(float("nan"), 1.0, 8, True)


def test_numpy_quantize_rounds_then_clamps():
    qp = QParams(scale=0.5, zero_point=-3, bits=4, signed=True)  # grid [-8, 7]
    x = np.array([-10.0, -2.75, 0.25, 0.75, 1.0, 4.9, 100.0], np.float32)
    # x/0.5 - 3 = [-23, -8.5, -2.5, -1.5, -1, 6.8, 197] -> round -> [-23, -8, -2, -2, -1, 7, 197]
    assert qp.quantize(x).tolist() == [-8, -8, -2, -2, -1, 7, 7]
    assert qp.dequantize(np.array([-8, 7])).tolist() == [-2.5, 5.0]
