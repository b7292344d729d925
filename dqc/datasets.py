"""Datasets by name, with the data root resolved the same way everywhere.

The root is ``--data-root``, else ``$DQC_DATA_ROOT``, else ``~/.cache/dqc/data``; under it
each dataset keeps PyG's raw layout (``Planetoid/Cora/raw/...``), and PyG downloads missing
files there. PyG's ``processed/`` cache is written under ``$DQC_CACHE_DIR`` (default
``~/.cache/dqc``), never beside the raw files, so a shared or read-only data folder stays
untouched.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch_geometric.transforms as T
from torch_geometric.data import Data
from torch_geometric.datasets import Planetoid

from dqc.synthetic import synthetic_graph

PLANETOID = {"cora": "Cora", "citeseer": "CiteSeer"}
NODE_DATASETS = (*PLANETOID, "synthetic")


class DatasetError(RuntimeError):
    """A dataset could not be found, downloaded or read."""


def cache_dir() -> Path:
    return Path(os.environ.get("DQC_CACHE_DIR") or Path.home() / ".cache" / "dqc")


def resolve_data_root(data_root: str | os.PathLike | None = None) -> Path:
    """``data_root``, else ``$DQC_DATA_ROOT``, else ``~/.cache/dqc/data``."""
    if data_root:
        return Path(data_root)
    return Path(os.environ.get("DQC_DATA_ROOT") or cache_dir() / "data")


class _Planetoid(Planetoid):
    """PyG's Planetoid with its processed cache moved under ``cache_dir()``."""

    @property
    def processed_dir(self) -> str:
        key = hashlib.sha256(str(Path(self.raw_dir).resolve()).encode()).hexdigest()[:16]
        return str(cache_dir() / "processed" / key / self.name)


def load_node_dataset(name: str, data_root: str | os.PathLike | None = None) -> Data:
    """One graph with ``x``, ``edge_index``, ``y`` and ``train/val/test_mask``.

    Planetoid features are row-normalised, as in Kipf & Welling and the DQ paper.
    """
    if name == "synthetic":
        return synthetic_graph()
    if name not in PLANETOID:
        raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(NODE_DATASETS)}")
    root = resolve_data_root(data_root) / "Planetoid"
    try:
        dataset = _Planetoid(str(root), PLANETOID[name], transform=T.NormalizeFeatures())
    except Exception as err:  # PyG raises URLError, FileNotFoundError, pickle errors, ...
        raise DatasetError(f"cannot load {PLANETOID[name]} from {root}: {err}") from err
    return dataset[0]
