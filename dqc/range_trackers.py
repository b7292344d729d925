"""Range trackers: how a quantizer's ``[min, max]`` follows the tensors it sees in training.

Each tracker maps the stored range (``None`` before the first batch) and a new batch to the
next range:

* ``"minmax"``: true min/max, running extreme (PyTorch's ``MinMaxObserver``).
* ``"ema"``: true min/max, exponential moving average with momentum 0.01 (plain QAT).
* ``"percentile"``: order statistics at ``p`` and ``1 - p`` (0.001 for INT8, 0.01 for INT4),
  running extreme. This is what Degree-Quant trains with.

The authors' percentile tracker runs ``kthvalue`` over every tensor at every step, which makes
DQ several times slower than QAT. Because a running extreme only ever widens, the order
statistic is needed only when it can move the range: the k-th smallest value is below the
stored minimum exactly when at least k values are below it, and it is then the k-th smallest
of just those values. So each step costs one counting pass (one fused TVM kernel,
``dqc.kernels.range_stats``, for both ends) plus, when a count reaches k, a selection over
the values outside the stored range: the tracked ranges are bit-identical to the authors',
at about the cost of QAT's min/max.
"""

from __future__ import annotations

import torch

from dqc.kernels.range_stats import count_outside

TRACKERS = ("minmax", "ema", "percentile")
EMA_MOMENTUM = 0.01

Range = tuple[torch.Tensor, torch.Tensor]


def percentile_ranks(n: int, p: float) -> tuple[int, int]:
    """1-based ranks (for ``kthvalue``) of DQ's lower and upper percentile among ``n`` values."""
    return max(1, min(n, int(n * p))), min(n, max(1, int(n * (1 - p))))


def _kth(x: torch.Tensor, k: int) -> torch.Tensor:
    return torch.kthvalue(x, k).values


def update_range(
    tracker: str,
    current: Range | None,
    x: torch.Tensor,
    percentile: float | None = None,
    counts: torch.Tensor | None = None,
) -> Range:
    """The range after seeing batch ``x`` (any shape, at least one element, detached), or,
    given ``counts`` (int64, one per row of ``x``, at least one positive), each row of ``x``
    that many times."""
    if tracker not in TRACKERS:
        raise ValueError(f"unknown range tracker {tracker!r}; expected one of {TRACKERS}")
    x = x.detach()
    if tracker == "percentile":
        return _update_percentile(current, x, percentile, counts)
    if counts is not None:
        x = x[counts > 0]
    lo, hi = torch.aminmax(x)
    if current is None:
        return lo, hi
    if tracker == "minmax":
        return torch.minimum(current[0], lo), torch.maximum(current[1], hi)
    return (  # ema
        current[0] + EMA_MOMENTUM * (lo - current[0]),
        current[1] + EMA_MOMENTUM * (hi - current[1]),
    )


def _update_percentile(
    current: Range | None, x: torch.Tensor, p: float | None, counts: torch.Tensor | None
) -> Range:
    if p is None or not 0.0 < p < 0.5:
        raise ValueError(f"percentile tracking needs 0 < p < 0.5, got {p!r}")
    rows = x.reshape(x.shape[0] if x.dim() else 1, -1)
    n = rows.numel() if counts is None else int(counts.sum()) * rows.size(1)
    k_lo, k_hi = percentile_ranks(n, p)
    if current is None:
        values = rows if counts is None else rows.repeat_interleave(counts, 0)
        return _kth(values.reshape(-1), k_lo), _kth(values.reshape(-1), k_hi)
    lo, hi = current
    weight = torch.ones(rows.size(0), dtype=torch.int64) if counts is None else counts
    below, above = count_outside(rows, weight, float(lo), float(hi))  # one fused pass
    if below >= k_lo:
        # The k smallest values all lie below lo when the k-th does: it is the k-th of those.
        lo = _kth(_select(rows, counts, rows < lo), k_lo)
    from_top = n - k_hi + 1  # the upper statistic is the from_top-th largest value
    if above >= from_top:
        hi = _kth(_select(rows, counts, rows > hi), above - from_top + 1)
    return lo, hi


def _select(x: torch.Tensor, counts: torch.Tensor | None, mask: torch.Tensor) -> torch.Tensor:
    """The values of the 2-D ``x`` under ``mask``, each repeated as many times as its row
    (rows of count 0 drop out)."""
    if counts is None:
        return x[mask]
    return x[mask].repeat_interleave(counts.repeat_interleave(mask.sum(1)))
