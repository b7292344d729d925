"""Fake quantization forward values and both gradients (STE and DQ's clipped GC)."""

import numpy as np
import pytest
import torch

from dqc.fake_quant import fake_quantize
from dqc.qparams import QParams

QP = QParams(scale=0.5, zero_point=-3, bits=4, signed=True)  # grid [-8, 7] -> [-2.5, 5.0]
X = [-10.0, -2.5, -2.25, 0.25, 1.1, 4.9, 5.0, 100.0]
# x / 0.5 - 3 = [-23, -8, -7.5, -2.5, -0.8, 6.8, 7, 197] -> round [-23, -8, -8, -2, -1, 7, 7, 197]


def test_forward_matches_hand_values_and_numpy():
    x = torch.tensor(X)
    out = fake_quantize(x, QP)
    expected = [-2.5, -2.5, -2.5, 0.5, 1.0, 5.0, 5.0, 5.0]
    assert out.tolist() == expected
    assert np.array_equal(QP.dequantize(QP.quantize(np.array(X))), np.array(expected, np.float32))


def test_deployed_rounding_counts_near_halves_as_halves():
    """In eval mode a value within 2^-10 of a half goes to the even code, as the integer
    program's requantize sends it; training rounds each value to its nearest code."""
    offsets = np.array([-(2.0**-11), 2.0**-11, -(2.0**-9), 2.0**-9])
    codes = np.array([2.5, 2.5, 2.5, 2.5]) + offsets  # x / 0.5 - 3 for the values below
    x = torch.tensor((codes + 3) * 0.5, dtype=torch.float32)
    deployed = fake_quantize(x, QP, deployed=True) / 0.5 - 3
    assert deployed.tolist() == [2, 2, 2, 3]
    assert (fake_quantize(x, QP) / 0.5 - 3).tolist() == [2, 3, 2, 3]
    assert QP.quantize(x.numpy()).tolist() == deployed.tolist()


@pytest.mark.parametrize(
    ("grad", "expected"),
    [
        ("ste", [1, 1, 1, 1, 1, 1, 1, 1]),
        # GC zeroes where round(x / s + z) <= qmin or >= qmax, grid ends included.
        ("gc", [0, 0, 0, 1, 1, 0, 0, 0]),
    ],
)
def test_gradients(grad, expected):
    x = torch.tensor(X, requires_grad=True)
    fake_quantize(x, QP, grad).backward(torch.full((len(X),), 2.0))
    assert x.grad.tolist() == [2.0 * e for e in expected]


@pytest.mark.parametrize("grad", ["ste", "gc"])
def test_protected_rows_pass_through_with_their_gradient(grad):
    x = torch.tensor([X, X[::-1], X], requires_grad=True)
    protect = torch.tensor([False, True, False])
    out = fake_quantize(x, QP, grad, protect)
    out.backward(torch.full_like(x, 2.0))
    alone = torch.tensor(X, requires_grad=True)
    fake_quantize(alone, QP, grad).backward(torch.full((len(X),), 2.0))
    assert torch.equal(out[1], x[1]) and torch.equal(x.grad[1], torch.full((len(X),), 2.0))
    for row in (0, 2):
        assert torch.equal(out[row], fake_quantize(alone, QP).detach())
        assert torch.equal(x.grad[row], alone.grad)


def test_protect_mask_must_match_the_rows():
    with pytest.raises(ValueError, match="protect mask of shape"):
        fake_quantize(torch.zeros(4, 2), QP, protect=torch.zeros(2, dtype=torch.bool))


def test_unknown_gradient_is_rejected():
    with pytest.raises(ValueError, match="unknown gradient"):
        fake_quantize(torch.zeros(2), QP, "lsq")


@pytest.mark.parametrize("shape", [(0, 4), (7,), (300, 33), (5, 3, 4)])
@pytest.mark.parametrize("grad", ["ste", "gc"])
def test_training_kernel_matches_float32_numpy_bit_for_bit(shape, grad):
    """Training's fused TVM kernel against the formula in NumPy float32, on random values and
    exact ties (half to even), with protected rows; the clipped gradient included."""
    rng = np.random.default_rng(0)
    qp = QParams(scale=0.375, zero_point=5, bits=8, signed=True)
    values = rng.normal(0.0, 40.0, shape).astype(np.float32)
    ties = (rng.integers(-140, 140, shape) + 0.5 - qp.zero_point) * qp.scale
    values = np.where(rng.random(shape) < 0.3, ties, values).astype(np.float32)
    protect = rng.random(shape[:1]) < 0.2
    x = torch.tensor(values, requires_grad=True)
    out = fake_quantize(x, qp, grad, torch.from_numpy(protect))
    out.backward(torch.full(shape, 2.0))

    s, z = np.float32(qp.scale), np.float32(qp.zero_point)
    codes = np.round(values / s + z)  # NumPy rounds half to even
    expected = (np.clip(codes, qp.qmin, qp.qmax) - z) * s
    inside = (codes > qp.qmin) & (codes < qp.qmax) if grad == "gc" else np.ones(shape, bool)
    rows = protect.reshape(protect.shape + (1,) * (len(shape) - 1))
    expected, inside = np.where(rows, values, expected), inside | rows
    assert np.array_equal(out.detach().numpy(), expected.astype(np.float32))
    assert np.array_equal(x.grad.numpy(), np.where(inside, 2.0, 0.0).astype(np.float32))


def test_training_kernel_rejects_other_dtypes():
    x = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    with pytest.raises(ValueError, match=r"float32 on the CPU, not torch\.float64"):
        fake_quantize(x, QP)
