"""Minibatch training of graph-level models (REDDIT-BINARY, ZINC) with QAT or Degree-Quant.

As in the authors' REDDIT-BINARY code, the state kept is the one of the epoch with the lowest
validation loss, and the test metric reported is that epoch's, evaluated as deployed (eval
mode, no masks). Degree-Quant draws a fresh protection mask for every minibatch, each node's
probability coming from its in-degree rank within its own graph.

A run can be resumed: given ``resume_path``, the whole training state (weights, optimiser,
schedule, best state, RNG) is written there after every epoch, and a later call with the same
path continues from the last finished epoch.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader
from tqdm.auto import tqdm

from dqc.degree_quant import probability_from_cdf, sample_protect_mask
from dqc.graph_datasets import GraphSplits, load_graph_dataset
from dqc.hparams import TrainSettings, model_defaults, train_defaults
from dqc.models import ModelConfig, build_model
from dqc.models.quant_points import track_weights
from dqc.schemes import get_scheme
from dqc.training import TrainedModel, check_graph

EVAL_BATCH = 512
MODEL_KEYS = (
    "hidden_channels",
    "dropout",
    "heads",
    "num_layers",
    "pooling",
    "batch_norm",
    "norm_after_relu",
)


def loss_fn(metric: str, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy for classification, L1 (the MAE itself) for regression."""
    return F.cross_entropy(out, y) if metric == "accuracy" else F.l1_loss(out, y)


def model_inputs(batch) -> tuple:
    return batch.x, batch.edge_index, batch.batch, batch.num_graphs


@torch.no_grad()
def evaluate_graphs(model: nn.Module, graphs: list[Data], metric: str) -> dict[str, float]:
    """``{"metric": accuracy % or MAE, "loss": mean loss}`` over ``graphs``, in eval mode."""
    model.eval()
    total_loss, total_metric, count = 0.0, 0.0, 0
    for batch in DataLoader(graphs, batch_size=EVAL_BATCH):
        out = model(*model_inputs(batch))
        n = batch.num_graphs
        total_loss += float(loss_fn(metric, out, batch.y)) * n
        if metric == "accuracy":
            total_metric += 100.0 * float((out.argmax(-1) == batch.y).sum())
        else:
            total_metric += float((out - batch.y).abs().sum())
        count += n
    return {"metric": total_metric / count, "loss": total_loss / count}


def _schedulers(optimizer, settings: TrainSettings) -> list:
    schedulers = []
    if settings.lr_halving_epochs:
        schedulers.append(
            torch.optim.lr_scheduler.StepLR(optimizer, settings.lr_halving_epochs, gamma=0.5)
        )
    if settings.plateau_patience:
        schedulers.append(
            torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer, factor=0.5, patience=settings.plateau_patience, min_lr=1e-5
            )
        )
    return schedulers


def fit_graphs(
    model: nn.Module,
    splits: GraphSplits,
    settings: TrainSettings,
    degree_quant: bool,
    progress: bool = True,
    resume_path: str | os.PathLike | None = None,
) -> dict:
    """Train ``model`` in place, leave it in its lowest-validation-loss state; its metrics."""
    if settings.epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {settings.epochs}")
    for graph in splits.train[:1]:
        check_graph(graph)
    metric = splits.metric
    track_weights(model, settings.weight_range)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay
    )
    schedulers = _schedulers(optimizer, settings)
    state = {"epoch": 0, "best": {}, "best_state": None, "epoch_seconds": []}
    resume_path = Path(resume_path) if resume_path else None
    if resume_path is not None and resume_path.is_file():
        saved = torch.load(resume_path, weights_only=True)
        if saved["settings"] != settings.record(graph_level=True):
            raise ValueError(
                f"{resume_path} is from a run with other settings ({saved['settings']}); "
                "delete it to start over"
            )
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        for scheduler, scheduler_state in zip(schedulers, saved["schedulers"], strict=True):
            scheduler.load_state_dict(scheduler_state)
        torch.set_rng_state(saved["rng"])
        state = saved["state"]
    bar = tqdm(
        range(state["epoch"], settings.epochs),
        desc="train",
        unit="epoch",
        disable=not progress,
        initial=state["epoch"],
        total=settings.epochs,
    )
    for epoch in bar:
        model.train()
        start = time.perf_counter()
        for batch in DataLoader(splits.train, batch_size=settings.batch_size, shuffle=True):
            protect = None
            if degree_quant:
                prob = probability_from_cdf(batch.degree_cdf, settings.p_min, settings.p_max)
                protect = sample_protect_mask(prob)
            optimizer.zero_grad()
            loss = loss_fn(metric, model(*model_inputs(batch), protect), batch.y)
            loss.backward()
            optimizer.step()
        state["epoch_seconds"].append(time.perf_counter() - start)
        val = evaluate_graphs(model, splits.val, metric)
        for scheduler in schedulers:
            scheduler.step(val["loss"]) if hasattr(scheduler, "patience") else scheduler.step()
        best = state["best"]
        if not best or val["loss"] < best["val_loss"]:
            test = evaluate_graphs(model, splits.test, metric)
            state["best"] = {
                "val_loss": val["loss"],
                f"val_{metric}": val["metric"],
                "test_loss": test["loss"],
                f"test_{metric}": test["metric"],
                "best_epoch": epoch,
            }
            state["best_state"] = copy.deepcopy(model.state_dict())
        state["epoch"] = epoch + 1
        bar.set_postfix(val_loss=f"{val['loss']:.3f}", val=f"{val['metric']:.3f}")
        if resume_path is not None:
            _save_resume(resume_path, settings, model, optimizer, schedulers, state)
    model.load_state_dict(state["best_state"])
    model.eval()
    seconds = torch.tensor(state["epoch_seconds"]).median()
    return {**state["best"], "epoch_seconds": float(seconds), "epochs_run": state["epoch"]}


def _save_resume(path: Path, settings, model, optimizer, schedulers, state: dict) -> None:
    payload = {
        "settings": settings.record(graph_level=True),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "schedulers": [s.state_dict() for s in schedulers],
        "rng": torch.get_rng_state(),
        "state": state,
    }
    partial = path.with_name(path.name + ".tmp")
    torch.save(payload, partial)
    partial.replace(path)  # atomic: an interrupted save never leaves a torn resume file


def train_graph_model(
    dataset: str,
    arch: str,
    scheme: str,
    seed: int = 0,
    data_root: str | os.PathLike | None = None,
    progress: bool = True,
    fold: int = 0,
    splits: GraphSplits | None = None,
    resume_path: str | os.PathLike | None = None,
    **overrides,
) -> TrainedModel:
    """Train one graph-level (dataset, arch, scheme[, fold]) cell with the packaged defaults;
    ``overrides`` as in ``dqc.training.train_model``."""
    overrides = {k: v for k, v in overrides.items() if v is not None}
    train_keys = {f.name for f in dataclasses.fields(TrainSettings)}
    unknown = set(overrides) - train_keys - set(MODEL_KEYS)
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)}")
    settings = dataclasses.replace(
        train_defaults(dataset, arch, scheme),
        **{k: v for k, v in overrides.items() if k in train_keys},
    )
    shape = model_defaults(arch, dataset)
    shape.update({k: v for k, v in overrides.items() if k in MODEL_KEYS})
    splits = load_graph_dataset(dataset, data_root, fold) if splits is None else splits
    torch.manual_seed(seed)
    config = ModelConfig(
        arch, scheme, splits.num_features, out_channels=splits.out_channels, task="graph", **shape
    )
    model = build_model(config)
    metrics = fit_graphs(
        model, splits, settings, get_scheme(scheme).degree_quant, progress, resume_path
    )
    training = {**dataclasses.asdict(settings), "seed": seed, "fold": fold}
    return TrainedModel(model, config, dataset, training, metrics)
