"""Graph-level datasets: REDDIT-BINARY (10-fold CV), the ZINC 12k subset and the MNIST /
CIFAR10 superpixel graphs, batched by PyG.

Each graph arrives ready for the models: float node features ``x`` (REDDIT-BINARY: the
z-scored out-degree, the authors' ``NormalizedDegree``; ZINC: the one-hot atom type, which a
linear first layer turns into an atom-type embedding), ``edge_index``, ``y`` and
``degree_cdf``, the empirical CDF of each node's in-degree within its own graph, from which
Degree-Quant draws protection per graph. Splits:

* ``reddit-binary``: ``StratifiedKFold(10, shuffle=True, random_state=12345)`` as in the
  authors' code; fold ``i`` tests on fold ``i``, validates on fold ``i - 1``, trains on the rest.
* ``zinc``: the benchmark's 10,000 / 1,000 / 1,000 molecules; the target is penalised logP.
* ``mnist`` / ``cifar10``: Benchmarking-GNNs' superpixel graphs (55,000 / 5,000 / 10,000 and
  45,000 / 5,000 / 10,000 images, 10 classes); a node's features are its mean intensity (1 or
  3 channels) followed by its 2 coordinates, as in that benchmark. They are not staged
  offline: PyG downloads them (about 1.3 and 2.7 GB) under ``<root>/GNNBenchmarkDataset``.

Roots and caches follow ``dqc.datasets``: raw files under ``<root>/TUDataset``,
``<root>/ZINC`` and ``<root>/GNNBenchmarkDataset``, PyG's ``processed/`` cache under
``$DQC_CACHE_DIR``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from sklearn.model_selection import StratifiedKFold
from torch_geometric.data import Data
from torch_geometric.datasets import ZINC, GNNBenchmarkDataset, TUDataset
from torch_geometric.utils import degree

from dqc.datasets import DatasetError, cache_dir, resolve_data_root
from dqc.degree_quant import in_degree_cdf

GRAPH_DATASETS = ("reddit-binary", "zinc", "mnist", "cifar10")
SUPERPIXELS = {"mnist": "MNIST", "cifar10": "CIFAR10"}  # dqc name -> PyG name
FOLDS = 10
FOLD_SEED = 12345
ZINC_ATOM_TYPES = 28


@dataclass
class GraphSplits:
    """Train / validation / test graphs of one dataset (and fold)."""

    name: str
    train: list[Data]
    val: list[Data]
    test: list[Data]
    num_features: int
    out_channels: int  # classes, or 1 for regression
    metric: str  # "accuracy" (percent, higher is better) or "mae" (lower is better)


def _cache_key(raw_dir: str) -> str:
    return hashlib.sha256(str(Path(raw_dir).resolve()).encode()).hexdigest()[:16]


class _TUDataset(TUDataset):
    @property
    def processed_dir(self) -> str:
        return str(cache_dir() / "processed" / _cache_key(self.raw_dir) / self.name)


class _ZINC(ZINC):
    @property
    def processed_dir(self) -> str:
        return str(cache_dir() / "processed" / _cache_key(self.raw_dir) / "ZINC-subset")


class _GNNBenchmarkDataset(GNNBenchmarkDataset):
    @property
    def processed_dir(self) -> str:
        return str(cache_dir() / "processed" / _cache_key(self.raw_dir) / self.name)


def _with_degree_cdf(data: Data) -> Data:
    data.degree_cdf = in_degree_cdf(data.edge_index, data.num_nodes)
    return data


def reddit_fold_indices(labels: torch.Tensor, fold: int) -> tuple[list, list, list]:
    """(train, val, test) graph indices of ``fold`` under the authors' 10-fold protocol."""
    if not 0 <= fold < FOLDS:
        raise ValueError(f"fold must be in [0, {FOLDS}), got {fold}")
    splitter = StratifiedKFold(FOLDS, shuffle=True, random_state=FOLD_SEED)
    tests = [test for _, test in splitter.split(torch.zeros(len(labels)), labels)]
    test, val = tests[fold], tests[fold - 1]
    held_out = set(test.tolist()) | set(val.tolist())
    train = [i for i in range(len(labels)) if i not in held_out]
    return train, val.tolist(), test.tolist()


def _load_reddit_binary(root: Path, fold: int) -> GraphSplits:
    dataset = _TUDataset(str(root / "TUDataset"), "REDDIT-BINARY")
    graphs = list(dataset)
    degrees = [degree(g.edge_index[0], g.num_nodes) for g in graphs]
    every = torch.cat(degrees)
    mean, std = every.mean(), every.std()
    for g, d in zip(graphs, degrees, strict=True):
        g.x = ((d - mean) / std).view(-1, 1)
        _with_degree_cdf(g)
    train, val, test = reddit_fold_indices(dataset.y, fold)
    pick = lambda idx: [graphs[i] for i in idx]  # noqa: E731
    return GraphSplits("reddit-binary", pick(train), pick(val), pick(test), 1, 2, "accuracy")


def _load_zinc(root: Path) -> GraphSplits:
    splits = {}
    for split in ("train", "val", "test"):
        graphs = list(_ZINC(str(root / "ZINC"), subset=True, split=split))
        for g in graphs:
            g.x = F.one_hot(g.x.view(-1), ZINC_ATOM_TYPES).float()
            g.edge_attr = None
            g.y = g.y.view(1, 1)
            _with_degree_cdf(g)
        splits[split] = graphs
    return GraphSplits("zinc", **splits, num_features=ZINC_ATOM_TYPES, out_channels=1, metric="mae")


def superpixel_features(graph: Data) -> Data:
    """Benchmarking-GNNs' node input of a superpixel graph: intensity, then ``pos``."""
    graph.x = torch.cat([graph.x, graph.pos], dim=1)
    graph.pos = graph.edge_attr = None
    return _with_degree_cdf(graph)


def _load_superpixels(root: Path, name: str) -> GraphSplits:
    splits = {}
    for split in ("train", "val", "test"):
        dataset = _GNNBenchmarkDataset(str(root / "GNNBenchmarkDataset"), SUPERPIXELS[name], split)
        splits[split] = [superpixel_features(g) for g in dataset]
    features = splits["test"][0].num_features
    return GraphSplits(name, **splits, num_features=features, out_channels=10, metric="accuracy")


def load_graph_dataset(
    name: str, data_root: str | os.PathLike | None = None, fold: int = 0
) -> GraphSplits:
    """The splits of ``name`` (``fold`` only matters for REDDIT-BINARY)."""
    if name not in GRAPH_DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(GRAPH_DATASETS)}")
    if not 0 <= fold < FOLDS:
        raise ValueError(f"fold must be in [0, {FOLDS}), got {fold}")
    root = resolve_data_root(data_root)
    try:
        if name == "reddit-binary":
            return _load_reddit_binary(root, fold)
        return _load_zinc(root) if name == "zinc" else _load_superpixels(root, name)
    except Exception as err:  # PyG raises URLError, FileNotFoundError, pickle errors, ...
        raise DatasetError(f"cannot load {name} from {root}: {err}") from err
