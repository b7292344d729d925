"""Full-batch node-classification training with QAT or Degree-Quant, and evaluation.

Training keeps the state (weights and quantizer ranges) of the epoch with the best
validation accuracy, ties broken by lower validation loss; the test accuracy reported is the
one of that state, evaluated as deployed: eval mode, no masks, every tensor quantized.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.data import Data
from tqdm.auto import tqdm

from dqc.datasets import load_node_dataset
from dqc.degree_quant import protection_probability, sample_protect_mask
from dqc.hparams import TrainSettings, model_defaults, train_defaults
from dqc.models import ModelConfig, build_model
from dqc.models.quant_points import track_weights
from dqc.schemes import get_scheme
from dqc.sparse_input import NONZERO_KEY, nonzero_fraction


@dataclass
class TrainedModel:
    model: nn.Module  # eval mode, best-validation state
    config: ModelConfig
    dataset: str
    training: dict  # the settings used, plus the seed
    metrics: dict  # accuracies and losses per split, best_epoch, train_step_seconds


def check_graph(data: Data) -> None:
    """Reject graphs the models cannot train on, naming the problem."""
    x, edge_index = data.x, data.edge_index
    if not data.num_nodes or x is None or x.dim() != 2:
        raise ValueError("graph has no nodes or no 2-D node features")
    if not torch.is_floating_point(x) or not torch.isfinite(x).all():
        raise ValueError("node features must be finite floats (found NaN/Inf or an int dtype)")
    if edge_index.dtype != torch.long or edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(
            f"edge_index must be int64 of shape [2, E], got {edge_index.dtype} "
            f"{tuple(edge_index.shape)}"
        )
    if edge_index.numel() and (edge_index.min() < 0 or edge_index.max() >= data.num_nodes):
        raise ValueError(f"edge_index has node ids outside [0, {data.num_nodes})")


@torch.no_grad()
def evaluate(model: nn.Module, data: Data) -> dict[str, float]:
    """Accuracy (percent) and loss on each split, in eval mode."""
    model.eval()
    logits = model(data.x, data.edge_index)
    metrics = {}
    for split in ("train", "val", "test"):
        mask, y = data[f"{split}_mask"], data.y[data[f"{split}_mask"]]
        correct = (logits[mask].argmax(-1) == y).float().mean()
        metrics[f"{split}_acc"] = 100.0 * float(correct)
        metrics[f"{split}_loss"] = float(F.cross_entropy(logits[mask], y))
    return metrics


def fit(
    model: nn.Module, data: Data, settings: TrainSettings, degree_quant: bool, progress=True
) -> dict:
    """Train ``model`` in place and leave it in its best-validation state; return its metrics.

    ``train_step_seconds`` is the median wall time of one training step (forward, backward,
    optimizer step): the cost Degree-Quant changes.
    """
    check_graph(data)
    if settings.epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {settings.epochs}")
    track_weights(model, settings.weight_range)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay
    )
    prob = None
    if degree_quant:
        prob = protection_probability(
            data.edge_index, data.num_nodes, settings.p_min, settings.p_max
        )
    best, best_key, best_state, step_times = {}, None, None, []
    bar = tqdm(range(settings.epochs), desc="train", unit="epoch", disable=not progress)
    for epoch in bar:
        model.train()
        start = time.perf_counter()
        protect = sample_protect_mask(prob) if prob is not None else None
        optimizer.zero_grad()
        out = model(data.x, data.edge_index, protect)
        loss = F.cross_entropy(out[data.train_mask], data.y[data.train_mask])
        loss.backward()
        optimizer.step()
        step_times.append(time.perf_counter() - start)

        metrics = evaluate(model, data)
        key = (metrics["val_acc"], -metrics["val_loss"])
        if best_key is None or key > best_key:
            best_key, best = key, {**metrics, "best_epoch": epoch}
            best_state = copy.deepcopy(model.state_dict())
        bar.set_postfix(loss=f"{loss.item():.3f}", val=f"{metrics['val_acc']:.1f}")
    model.load_state_dict(best_state)
    model.eval()
    best["train_step_seconds"] = float(torch.tensor(step_times).median())
    return best


def train_model(
    dataset: str,
    arch: str,
    scheme: str,
    seed: int = 0,
    data_root: str | os.PathLike | None = None,
    progress: bool = True,
    data: Data | None = None,
    **overrides,
) -> TrainedModel:
    """Train one (dataset, arch, scheme) cell with the packaged defaults.

    ``overrides`` replace defaults by name: model keys (``hidden_channels``, ``dropout``,
    ``heads``) and training keys (``lr``, ``weight_decay``, ``epochs``, ``p_min``, ``p_max``);
    ``None`` values are ignored. ``data`` skips loading when the graph is already in memory.
    """
    overrides = {k: v for k, v in overrides.items() if v is not None}
    train_keys = {f.name for f in dataclasses.fields(TrainSettings)}
    unknown = set(overrides) - train_keys - {"hidden_channels", "dropout", "heads"}
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)}")
    settings = dataclasses.replace(
        train_defaults(dataset, arch, scheme),
        **{k: v for k, v in overrides.items() if k in train_keys},
    )
    shape = {**model_defaults(arch), **{k: v for k, v in overrides.items() if k not in train_keys}}
    data = load_node_dataset(dataset, data_root) if data is None else data
    torch.manual_seed(seed)
    config = ModelConfig(
        arch, scheme, data.num_features, out_channels=int(data.y.max()) + 1, **shape
    )
    model = build_model(config)
    metrics = fit(model, data, settings, get_scheme(scheme).degree_quant, progress)
    training = {**dataclasses.asdict(settings), "seed": seed}
    training[NONZERO_KEY] = nonzero_fraction(data.x)  # dqc compile's --sparse-input auto
    return TrainedModel(model, config, dataset, training, metrics)
