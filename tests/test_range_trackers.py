"""Range trackers: min/max, EMA and DQ's percentile with running extreme."""

import pytest
import torch

from dqc.kernels.range_stats import count_outside
from dqc.range_trackers import EMA_MOMENTUM, percentile_ranks, update_range


def test_minmax_running_extreme():
    r = update_range("minmax", None, torch.tensor([-1.0, 2.0]))
    r = update_range("minmax", r, torch.tensor([0.5, 3.0]))
    r = update_range("minmax", r, torch.tensor([-0.5, 1.0]))
    assert [float(v) for v in r] == [-1.0, 3.0]


def test_ema_momentum_001():
    r = update_range("ema", None, torch.tensor([-1.0, 2.0]))
    r = update_range("ema", r, torch.tensor([-3.0, 4.0]))
    assert EMA_MOMENTUM == 0.01
    assert float(r[0]) == pytest.approx(-1.0 + 0.01 * (-3.0 + 1.0))  # -1.02
    assert float(r[1]) == pytest.approx(2.0 + 0.01 * (4.0 - 2.0))  # 2.02


def test_percentile_ranks_follow_dq():
    # min: k = max(1, min(n, floor(n p))); max: k = min(n, max(1, floor(n (1 - p))))
    assert percentile_ranks(1000, 0.001) == (1, 999)
    assert percentile_ranks(1000, 0.01) == (10, 990)
    assert percentile_ranks(5, 0.01) == (1, 4)
    assert percentile_ranks(1, 0.001) == (1, 1)


def test_percentile_first_batch_is_order_statistic():
    x = torch.arange(1000, dtype=torch.float32)  # 0..999
    lo, hi = update_range("percentile", None, x, 0.01)
    assert (float(lo), float(hi)) == (9.0, 989.0)  # 10th and 990th smallest


def _naive_percentile(current, x, p):
    """The authors' tracker: kthvalue on every batch, then running extreme."""
    k_lo, k_hi = percentile_ranks(x.numel(), p)
    lo, hi = torch.kthvalue(x, k_lo).values, torch.kthvalue(x, k_hi).values
    if current is None:
        return lo, hi
    return torch.minimum(current[0], lo), torch.maximum(current[1], hi)


@pytest.mark.parametrize("p", [0.001, 0.01])
@pytest.mark.parametrize("relu", [False, True], ids=["signed", "relu"])
def test_fast_percentile_equals_naive_bit_for_bit(p, relu):
    gen = torch.Generator().manual_seed(0)
    fast = naive = None
    for step in range(300):
        # drifting, heavy-tailed batches of varying size, as activations in training;
        # after a ReLU nothing ever lies below the tracked minimum 0
        n = int(torch.randint(1, 5000, (1,), generator=gen))
        x = torch.randn(n, generator=gen) ** 3 * (1 + step / 100)
        x = x.clamp(min=0) if relu else x
        fast = update_range("percentile", fast, x, p)
        naive = _naive_percentile(naive, x, p)
        assert torch.equal(fast[0], naive[0]) and torch.equal(fast[1], naive[1])


def test_bad_tracker_arguments():
    with pytest.raises(ValueError, match="percentile"):
        update_range("percentile", None, torch.ones(3), None)
    with pytest.raises(ValueError, match="unknown range tracker"):
        update_range("mean", None, torch.ones(3))


@pytest.mark.parametrize(
    "tracker, p", [("percentile", 0.001), ("percentile", 0.01), ("minmax", None), ("ema", None)]
)
def test_row_counts_track_the_repeated_rows_bit_for_bit(tracker, p):
    """Rows with multiplicities (messages gathered from nodes) track the range of the tensor
    that repeats them, without building it."""
    gen = torch.Generator().manual_seed(1)
    weighted = repeated = None
    for step in range(200):
        rows = int(torch.randint(1, 300, (1,), generator=gen))
        x = torch.randn(rows, 8, generator=gen) ** 3 * (1 + step / 50)
        counts = torch.randint(0, 6, (rows,), generator=gen)
        counts[0] = 1  # at least one row present
        weighted = update_range(tracker, weighted, x, p, counts)
        repeated = update_range(tracker, repeated, x.repeat_interleave(counts, 0), p)
        assert torch.equal(weighted[0], repeated[0]) and torch.equal(weighted[1], repeated[1])


@pytest.mark.parametrize("shape", [(1000,), (200, 5, 3)])
def test_count_outside_weighs_rows_and_counts_strictly(shape):
    """The tracker's fused counting pass against torch's comparisons: values equal to an end
    do not count, each row counts its weight times (0 for protected rows)."""
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(shape, generator=gen).round(decimals=1)  # many values exactly on an end
    weight = torch.randint(0, 4, shape[:1], generator=gen)
    lo, hi = -1.0, 0.5

    def weighted_count(mask):
        return int((mask.reshape(shape[0], -1).sum(1) * weight).sum())

    expected = (weighted_count(x < lo), weighted_count(x > hi))
    assert count_outside(x, weight, lo, hi) == expected
    assert expected[0] > 0 and expected[1] > 0 and bool((x == hi).any())
