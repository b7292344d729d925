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


def in_degree_cdf(edge_index: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """``F(d_v)`` of every node of one graph (float64, shape ``[num_nodes]``)."""
    if num_nodes == 0:
        return torch.zeros(0, dtype=torch.float64)
    in_degree = degree(edge_index[1], num_nodes, dtype=torch.long)
    cdf = torch.bincount(in_degree).cumsum(0).double() / num_nodes
    return cdf[in_degree]


def probability_from_cdf(cdf: torch.Tensor, p_min: float, p_max: float) -> torch.Tensor:
    """``p_min + (p_max - p_min) * F(d_v)`` (float32); ``cdf`` may span many graphs, each
    ranked within itself (graph-level batches)."""
    if not 0.0 <= p_min <= p_max <= 1.0:
        raise ValueError(f"need 0 <= p_min <= p_max <= 1, got p_min={p_min}, p_max={p_max}")
    return (p_min + (p_max - p_min) * cdf).float()


def protection_probability(
    edge_index: torch.Tensor, num_nodes: int, p_min: float, p_max: float
) -> torch.Tensor:
    """Per-node protection probability of one graph (float32, shape ``[num_nodes]``)."""
    return probability_from_cdf(in_degree_cdf(edge_index, num_nodes), p_min, p_max)


def sample_protect_mask(prob: torch.Tensor, generator: torch.Generator | None = None):
    """Bernoulli draw: ``True`` marks a protected (full-precision) node."""
    return torch.bernoulli(prob, generator=generator).bool()
