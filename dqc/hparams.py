"""Default model shapes and training hyper-parameters, read from ``defaults.toml``.

Training keys are looked up from the most general section to the most specific, later ones
overriding earlier: ``"<arch>"``, ``"<arch>/<scheme>"``, ``"<dataset>"``, ``"<dataset>/<arch>"``,
``"<dataset>/<arch>/<scheme>"``; model keys from ``"<arch>"`` then ``"<dataset>/<arch>"``.
A dataset listed under ``[like]`` first takes the sections of the dataset named there (the
superpixel graphs start from ZINC's Benchmarking-GNNs settings).
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources

MINIBATCH_FIELDS = ("batch_size", "lr_halving_epochs", "plateau_patience")  # graph-level only


@dataclass(frozen=True)
class TrainSettings:
    """Optimiser and Degree-Quant settings of one training run."""

    lr: float
    weight_decay: float
    epochs: int
    p_min: float = 0.0
    p_max: float = 0.0
    # graph-level datasets (minibatches of graphs); 0 disables a schedule
    batch_size: int = 128
    lr_halving_epochs: int = 0  # halve the learning rate every this many epochs
    plateau_patience: int = 0  # halve it after this many epochs without a better val loss
    # range tracker of the weight quantizers: "scheme" (the scheme's, as for activations; the
    # authors' choice) or "minmax", which never clips a weight (``quant_points.track_weights``)
    weight_range: str = "scheme"

    def record(self, graph_level: bool) -> dict:
        """The settings as a dict for result-cache keys. Fields added after results were
        cached stay out at their defaults, so those results keep their keys: node-level
        records have no minibatch fields, and ``weight_range`` appears only when set."""
        record = dataclasses.asdict(self)
        if not graph_level:
            for name in MINIBATCH_FIELDS:
                del record[name]
        if record["weight_range"] == "scheme":
            del record["weight_range"]
        return record


@cache
def _table() -> dict:
    return tomllib.loads(resources.files("dqc").joinpath("defaults.toml").read_text())


def _lineage(dataset: str | None) -> list:
    """``dataset``, preceded by the dataset whose defaults it starts from, if any."""
    like = _table().get("like", {}).get(dataset)
    return [like, dataset] if like else [dataset]


def model_defaults(arch: str, dataset: str | None = None) -> dict:
    """``hidden_channels``, ``dropout`` (``heads`` for GAT, ``num_layers`` where it is not 2)
    of an architecture, with the dataset's overrides."""
    sections = _table()["model"]
    if arch not in sections:
        raise ValueError(f"no model defaults for architecture {arch!r}")
    merged = dict(sections[arch])
    for name in _lineage(dataset):
        merged.update(sections.get(f"{name}/{arch}", {}))
    return merged


def train_defaults(dataset: str, arch: str, scheme: str) -> TrainSettings:
    """Merged training settings for one (dataset, arch, scheme) cell."""
    sections = _table()["train"]
    merged: dict = {}
    keys = [arch, f"{arch}/{scheme}"]
    for name in _lineage(dataset):
        keys += [name, f"{name}/{arch}", f"{name}/{arch}/{scheme}"]
    for key in keys:
        merged.update(sections.get(key, {}))
    return TrainSettings(**merged)
