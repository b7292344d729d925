"""Benchmark workloads: real datasets by name, a seeded Reddit-shaped synthetic graph, and
batches of real small graphs for graph-level models.

``reddit_shaped`` mimics the Reddit graph DQ's speed claims use, at a size a 2-core machine
handles: 50,000 nodes, about 5,000,000 directed edges whose targets follow a power law
(max in-degree well over 5,000), 602 input features and 41 classes.

``zinc-batch`` is the 1,000 ZINC test molecules in one disjoint batch, ``reddit-binary-batch``
the first 128 REDDIT-BINARY test graphs of fold 0 (one training minibatch's worth): the many
small graphs per request of a graph-level deployment.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch_geometric.data import Batch

from dqc.datasets import NODE_DATASETS
from dqc.graph_datasets import load_graph_dataset

NODE_WORKLOADS = ("reddit-shaped", *NODE_DATASETS)  # graphs dqc bench and dqc tune run on


@dataclass(frozen=True)
class GraphBatchWorkload:
    """``graphs`` test graphs of ``dataset``, batched; ``arch`` is the default model's."""

    dataset: str
    graphs: int
    arch: str


GRAPH_WORKLOADS = {
    "zinc-batch": GraphBatchWorkload("zinc", 1000, "gcn"),
    "reddit-binary-batch": GraphBatchWorkload("reddit-binary", 128, "gin"),
}
WORKLOADS = (*NODE_WORKLOADS, *GRAPH_WORKLOADS)  # dqc bench also times graph-level batches
REDDIT_SHAPE = {"num_nodes": 50_000, "num_edges": 5_000_000, "features": 602, "classes": 41}


def power_law_graph(num_nodes: int, num_edges: int, exponent: float, seed: int) -> np.ndarray:
    """``edge_index`` [2, E] (int64): targets drawn with weight ``rank^-exponent``, sources
    uniformly, both over a random permutation of the nodes."""
    rng = np.random.default_rng(seed)
    weights = np.arange(1, num_nodes + 1, dtype=np.float64) ** -exponent
    order = rng.permutation(num_nodes)
    dst = order[rng.choice(num_nodes, num_edges, p=weights / weights.sum())]
    src = rng.integers(0, num_nodes, num_edges)
    return np.stack([src, dst]).astype(np.int64)


def reddit_shaped(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x [50000, 602] float32, edge_index [2, ~5M] int64, y [50000] int64)``."""
    shape = REDDIT_SHAPE
    rng = np.random.default_rng(seed)
    edge_index = power_law_graph(shape["num_nodes"], shape["num_edges"], 0.6, seed)
    x = rng.standard_normal((shape["num_nodes"], shape["features"]), dtype=np.float32)
    y = rng.integers(0, shape["classes"], shape["num_nodes"])
    return x, edge_index, y


def graph_batch(name: str, data_root=None) -> Batch:
    """The disjoint batch of graph workload ``name`` (``x``, ``edge_index``, ``batch``, ...)."""
    workload = GRAPH_WORKLOADS[name]
    test = load_graph_dataset(workload.dataset, data_root).test
    if len(test) < workload.graphs:
        raise ValueError(f"{name}: {workload.dataset} has only {len(test)} test graphs")
    return Batch.from_data_list(test[: workload.graphs])
