"""A built-in synthetic node-classification graph, so ``dqc demo`` needs no download.

A degree-corrected stochastic block model: node weights follow a Pareto law, so in-degrees
are heavy-tailed like real citation and social graphs (the regime Degree-Quant targets), and
edges stay inside a node's class with probability ``homophily``. Features are noisy class
centroids, weak enough that aggregating over neighbours matters.
"""

from __future__ import annotations

import numpy as np
import torch
from torch_geometric.data import Data
from torch_geometric.utils import coalesce, remove_self_loops, to_undirected


def synthetic_graph(
    num_nodes: int = 2000,
    num_classes: int = 5,
    num_features: int = 64,
    average_degree: float = 8.0,
    homophily: float = 0.8,
    noise: float = 3.0,
    seed: int = 0,
) -> Data:
    """An undirected power-law SBM graph with Planetoid-style masks: 20 training nodes per
    class, then up to 500 validation and 1,000 test nodes."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, num_classes, num_nodes)
    weight = rng.pareto(2.0, num_nodes) + 1.0
    num_edges = int(num_nodes * average_degree / 2)
    src = rng.choice(num_nodes, num_edges, p=weight / weight.sum())
    dst = rng.choice(num_nodes, num_edges, p=weight / weight.sum())
    same_class = rng.random(num_edges) < homophily
    for c in range(num_classes):
        members = np.flatnonzero(y == c)
        pick = same_class & (y[src] == c)
        p = weight[members] / weight[members].sum()
        dst[pick] = rng.choice(members, pick.sum(), p=p)
    edge_index = torch.from_numpy(np.stack([src, dst]))
    edge_index = coalesce(to_undirected(remove_self_loops(edge_index)[0]), num_nodes=num_nodes)

    centroids = rng.normal(size=(num_classes, num_features))
    x = centroids[y] + noise * rng.normal(size=(num_nodes, num_features))

    order = rng.permutation(num_nodes)
    train = np.concatenate([order[y[order] == c][:20] for c in range(num_classes)])
    rest = np.setdiff1d(order, train, assume_unique=True)
    rest = rest[rng.permutation(rest.size)]
    num_val = min(500, rest.size // 3)
    val, test = rest[:num_val], rest[num_val : num_val + 1000]
    masks = {}
    for name, nodes in (("train", train), ("val", val), ("test", test)):
        mask = torch.zeros(num_nodes, dtype=torch.bool)
        mask[torch.from_numpy(nodes)] = True
        masks[f"{name}_mask"] = mask
    return Data(
        x=torch.tensor(x, dtype=torch.float32),
        edge_index=edge_index,
        y=torch.from_numpy(y),
        num_nodes=num_nodes,
        **masks,
    )
