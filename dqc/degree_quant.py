"""Degree-Quant's stochastic protective masking.

Each node is protected (kept in float for one training step) with probability

    p_v = p_min + (p_max - p_min) * F(d_v),   F(d) = |{u : d_u <= d}| / n,

the empirical CDF of in-degree taken over the raw ``edge_index`` (targets, before any
self-loops), per graph. A fresh Bernoulli mask is drawn at every training forward pass and
shared by all layers of that pass, as in the authors' released GIN.
"""

from __future__ import annotations

import torch
from torch_geometric.utils import degree


def protection_probability(
    edge_index: torch.Tensor, num_nodes: int, p_min: float, p_max: float
) -> torch.Tensor:
    """Per-node protection probability (float32, shape ``[num_nodes]``)."""
    if not 0.0 <= p_min <= p_max <= 1.0:
        raise ValueError(f"need 0 <= p_min <= p_max <= 1, got p_min={p_min}, p_max={p_max}")
    if num_nodes == 0:
        return torch.zeros(0)
    in_degree = degree(edge_index[1], num_nodes, dtype=torch.long)
    cdf = torch.bincount(in_degree).cumsum(0).double() / num_nodes
    return (p_min + (p_max - p_min) * cdf[in_degree]).float()


def sample_protect_mask(prob: torch.Tensor, generator: torch.Generator | None = None):
    """Bernoulli draw: ``True`` marks a protected (full-precision) node."""
    return torch.bernoulli(prob, generator=generator).bool()
