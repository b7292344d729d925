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
