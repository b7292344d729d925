"""The ``model.pt`` checkpoint: one file, loadable with ``torch.load(weights_only=True)``.

Layout (plain dicts, lists, strings, numbers and tensors only, so no code ever runs on load)::

    {"format": "dqc-checkpoint", "version": 1, "dqc_version": "...",
     "dataset": "cora", "model": {ModelConfig}, "training": {lr, weight_decay, ..., seed},
     "metrics": {val_acc, test_acc, ...}, "state_dict": {name: tensor}}

The state dict holds every quantizer's tracked range (``<layer>.quant.<role>.min_val`` /
``max_val``), from which the compiler derives scales and zero points.
"""

from __future__ import annotations

import os
import pickle
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from dqc import __version__
from dqc.models import ModelConfig, build_model

FORMAT = "dqc-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file is unreadable, hostile or not one dqc understands."""


@dataclass
class Checkpoint:
    path: Path
    dataset: str
    config: ModelConfig
    training: dict
    metrics: dict
    model: nn.Module  # in eval mode


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    config: ModelConfig,
    dataset: str,
    training: dict,
    metrics: dict,
) -> None:
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "dqc_version": __version__,
        "dataset": dataset,
        "model": config.to_dict(),
        "training": training,
        "metrics": metrics,
        "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()},
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, path)


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return (text[0] if text else type(err).__name__)[:300]


def _unpickler_reason(err: pickle.UnpicklingError) -> str:
    """The one informative line of torch's weights-only refusal, e.g. 'Unsupported global:
    GLOBAL io.open was not an allowed global by default' for a pickle that would call code."""
    text = str(err)
    if "WeightsUnpickler error:" in text:
        lines = text.split("WeightsUnpickler error:", 1)[1].strip().splitlines()
        return lines[0].split(". ")[0].strip()[:200] if lines else "unsupported content"
    return _first_line(err)


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read and validate ``path``; any problem raises ``CheckpointError`` naming file and cause."""
    path = Path(path)

    def fail(cause: str) -> CheckpointError:
        return CheckpointError(f"{path}: {cause}")

    if not path.is_file():
        raise fail("no such file")
    if not zipfile.is_zipfile(path):
        raise fail(
            "not a checkpoint file (torch.save writes a zip archive; this one is empty, "
            "truncated or in another format)"
        )
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols of odd files
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise fail(f"refused by the safe loader ({_unpickler_reason(err)})") from None
    except Exception as err:  # RuntimeError (bad zip), EOFError (empty), ...
        raise fail(f"not a readable checkpoint ({_first_line(err)})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise fail(f"not a dqc checkpoint (no format marker {FORMAT!r})")
    if payload.get("version") != VERSION:
        raise fail(
            f"unsupported checkpoint version {payload.get('version')!r} (expected {VERSION})"
        )
    for key, kind in (
        ("dataset", str),
        ("training", dict),
        ("metrics", dict),
        ("state_dict", dict),
    ):
        if not isinstance(payload.get(key), kind):
            raise fail(f"field {key!r} is missing or not a {kind.__name__}")
    try:
        config = ModelConfig.from_dict(payload.get("model"))
        model = build_model(config)
        model.load_state_dict(payload["state_dict"])
    except Exception as err:
        raise fail(f"invalid model ({_first_line(err)})") from None
    return Checkpoint(
        path, payload["dataset"], config, payload["training"], payload["metrics"], model.eval()
    )
