"""Protection probabilities pinned to DQ's formula, mask sampling and masked quantizers."""

import pytest
import torch

from dqc.degree_quant import protection_probability, sample_protect_mask
from dqc.quantizer import Quantizer


def test_probability_is_linear_in_the_in_degree_cdf():
    # in-degrees (targets only, no self-loops): node0 3, node1 1, node2 1, node3 0, node4 0
    edge_index = torch.tensor([[1, 2, 3, 0, 4], [0, 0, 0, 1, 2]])
    prob = protection_probability(edge_index, 5, p_min=0.1, p_max=0.5)
    # F(d) = |{u : d_u <= d}| / n: F(0) = 2/5, F(1) = 4/5, F(3) = 5/5
    cdf = torch.tensor([5, 4, 4, 2, 2]) / 5
    assert torch.allclose(prob, 0.1 + 0.4 * cdf)
    assert prob.max() == pytest.approx(0.5)  # the highest degree gets exactly p_max


def test_self_loops_in_input_count_as_given_and_isolated_graph():
    prob = protection_probability(torch.zeros(2, 0, dtype=torch.long), 4, 0.0, 0.2)
    assert torch.allclose(prob, torch.full((4,), 0.2))  # all share degree 0: F = 1
    assert protection_probability(torch.zeros(2, 0, dtype=torch.long), 0, 0, 0.1).numel() == 0


def test_bad_probability_range():
    with pytest.raises(ValueError, match="p_min"):
        protection_probability(torch.zeros(2, 0, dtype=torch.long), 3, 0.5, 0.2)


def test_mask_frequencies_follow_probabilities():
    prob = torch.tensor([0.0, 0.25, 1.0]).repeat(20000)
    mask = sample_protect_mask(prob, torch.Generator().manual_seed(0)).view(-1, 3).float()
    freq = mask.mean(0)
    assert freq[0] == 0 and freq[2] == 1 and abs(float(freq[1]) - 0.25) < 0.01


def _quantizer():
    return Quantizer(bits=8, signed=True, tracker="minmax").train()


def test_protected_rows_stay_float_and_are_excluded_from_ranges():
    q = _quantizer()
    x = torch.tensor([[0.013, -1.0], [100.0, -50.0], [0.5, 2.0]])
    protect = torch.tensor([False, True, False])
    out = q(x, protect)
    assert (float(q.min_val), float(q.max_val)) == (-1.0, 2.0)  # row 1 not seen
    assert torch.equal(out[1], x[1])  # protected row untouched
    assert not torch.equal(out[0], x[0])  # others on the grid
    assert torch.equal(out[[0, 2]], q.eval()(x)[[0, 2]])


def test_all_protected_before_any_range_passes_through():
    q = _quantizer()
    x = torch.randn(4, 3)
    out = q(x, torch.ones(4, dtype=torch.bool))
    assert torch.equal(out, x) and not q.calibrated


def test_eval_uses_frozen_range_and_ignores_mask():
    q = _quantizer()
    q(torch.tensor([[-1.0, 1.0]]))
    q.eval()
    out = q(torch.tensor([[5.0, -5.0]]), torch.tensor([True]))
    assert (float(q.min_val), float(q.max_val)) == (-1.0, 1.0)
    qp = q.qparams()
    assert out.tolist() == [[qp.dequantize(qp.qmax), qp.dequantize(qp.qmin)]]  # clamped, unmasked


def test_eval_without_range_is_an_error():
    with pytest.raises(RuntimeError, match="no range"):
        _quantizer().eval()(torch.ones(2))


@pytest.mark.parametrize("bits", [8, 4])
def test_gathered_rows_equal_quantizing_the_gathered_tensor(bits):
    """``gathered`` (each node row quantized once) gives the messages, gradients and ranges of
    quantizing every gathered row, in training and in eval."""
    gen = torch.Generator().manual_seed(0)
    per_edge = Quantizer(bits, percentile=0.01 if bits == 4 else 0.001)
    per_node = Quantizer(bits, percentile=0.01 if bits == 4 else 0.001)
    for step in range(30):
        nodes = int(torch.randint(2, 60, (1,), generator=gen))
        x = (torch.randn(nodes, 5, generator=gen) * (1 + step)).requires_grad_()
        index = torch.randint(0, nodes, (3 * nodes,), generator=gen)
        protect = torch.rand(nodes, generator=gen) < (1.0 if step == 0 else 0.3)
        grad = torch.randn(index.numel(), 5, generator=gen)
        expected = per_edge(x[index], protect[index])
        (expected_grad,) = torch.autograd.grad(expected, x, grad)
        got = per_node.gathered(x, index, protect)
        (got_grad,) = torch.autograd.grad(got, x, grad)
        assert torch.equal(got, expected) and torch.equal(got_grad, expected_grad)
        for name in ("min_val", "max_val"):  # NaN while every row is protected (step 0)
            exact = {"rtol": 0, "atol": 0, "equal_nan": True}
            torch.testing.assert_close(getattr(per_node, name), getattr(per_edge, name), **exact)
    x, index = torch.randn(7, 5) * 40, torch.tensor([6, 0, 0, 3])
    assert torch.equal(per_node.eval().gathered(x, index), per_edge.eval()(x[index]))
