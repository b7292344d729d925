"""Default model shapes and training hyper-parameters, read from ``defaults.toml``.

Training keys are looked up from the most general section to the most specific, later ones
overriding earlier: ``"<arch>"``, ``"<arch>/<scheme>"``, ``"<dataset>/<arch>"``,
``"<dataset>/<arch>/<scheme>"``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True)
class TrainSettings:
    """Optimiser and Degree-Quant settings of one training run."""

    lr: float
    weight_decay: float
    epochs: int
    p_min: float = 0.0
    p_max: float = 0.0


@cache
def _table() -> dict:
    return tomllib.loads(resources.files("dqc").joinpath("defaults.toml").read_text())


def model_defaults(arch: str) -> dict:
    """``hidden_channels``, ``dropout`` (and ``heads`` for GAT) of an architecture."""
    try:
        return dict(_table()["model"][arch])
    except KeyError:
        raise ValueError(f"no model defaults for architecture {arch!r}") from None


def train_defaults(dataset: str, arch: str, scheme: str) -> TrainSettings:
    """Merged training settings for one (dataset, arch, scheme) cell."""
    sections = _table()["train"]
    merged: dict = {}
    for key in (arch, f"{arch}/{scheme}", f"{dataset}/{arch}", f"{dataset}/{arch}/{scheme}"):
        merged.update(sections.get(key, {}))
    return TrainSettings(**merged)
