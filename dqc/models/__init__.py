"""GCN, GAT and GIN with Degree-Quant quantization points, built from a plain config dict.

``task="node"`` models classify nodes (the last layer outputs the classes); ``task="graph"``
models put ``num_layers`` hidden layers under a mean- or add-pooling readout (``GraphModel``).
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, fields

from torch import nn

from dqc.models.gat import GAT
from dqc.models.gcn import GCN
from dqc.models.gin import GIN
from dqc.models.graph_model import GraphModel
from dqc.models.quant_points import ROLES, quantization_points
from dqc.schemes import get_scheme

ARCHS = ("gcn", "gat", "gin")
TASKS = ("node", "graph")


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a model; stored as a dict in checkpoints."""

    arch: str
    scheme: str
    in_channels: int
    hidden_channels: int
    out_channels: int
    dropout: float
    heads: int = 1
    num_layers: int = 2
    task: str = "node"
    pooling: str = "mean"  # graph-level models: "mean" or "add"
    batch_norm: bool = False  # GIN: BatchNorm after each MLP, folded into its last linear
    norm_after_relu: bool = False  # GIN, graph-level: that BatchNorm after the MLP's ReLU

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: object) -> ModelConfig:
        """Validate a stored config: exact keys and plain types, so bad files fail clearly."""
        if not isinstance(data, dict):
            raise ValueError(f"model config must be a dict, got {type(data).__name__}")
        known = {f.name: f for f in fields(cls)}
        required = {name for name, f in known.items() if f.default is MISSING}
        if not required <= data.keys() <= known.keys():
            raise ValueError(f"model config keys {sorted(data)} != expected {sorted(known)}")
        for name, value in data.items():
            kind = known[name].type
            expected = {"str": str, "int": int, "float": (int, float), "bool": bool}[kind]
            if not isinstance(value, expected) or (kind != "bool" and isinstance(value, bool)):
                raise ValueError(f"model config {name!r} has a bad value {value!r}")
        return cls(**data)


def build_model(config: ModelConfig) -> nn.Module:
    """A freshly initialised model for ``config``."""
    scheme = get_scheme(config.scheme)
    if config.task not in TASKS:
        raise ValueError(f"unknown task {config.task!r}; choose from {', '.join(TASKS)}")
    if config.num_layers < 1:
        raise ValueError(f"num_layers must be at least 1, got {config.num_layers}")
    if config.batch_norm and config.arch != "gin":
        raise ValueError(f"batch_norm is a GIN option, not one of {config.arch}")
    if config.norm_after_relu and not (config.batch_norm and config.task == "graph"):
        raise ValueError(
            "norm_after_relu places the BatchNorm of a graph-level GIN: it needs "
            "batch_norm and task 'graph'"
        )
    graph_level = config.task == "graph"
    hidden = [config.hidden_channels] * (config.num_layers - (0 if graph_level else 1))
    channels = [config.in_channels, *hidden] + ([] if graph_level else [config.out_channels])
    # graph-level models drop out in the readout only, as the authors' REDDIT-BINARY GIN
    dropout = 0.0 if graph_level else config.dropout
    if config.arch == "gcn":
        body = GCN(channels, scheme, dropout=dropout)
    elif config.arch == "gat":
        body = GAT(channels, scheme, config.heads, dropout, not graph_level)
    elif config.arch == "gin":
        body = GIN(channels, scheme, dropout, config.batch_norm, config.norm_after_relu)
    else:
        raise ValueError(f"unknown architecture {config.arch!r}; choose from {', '.join(ARCHS)}")
    if not graph_level:
        return body
    width = config.hidden_channels * (config.heads if config.arch == "gat" else 1)
    return GraphModel(body, width, config.out_channels, scheme, config.dropout, config.pooling)


__all__ = ["ARCHS", "ROLES", "TASKS", "ModelConfig", "build_model", "quantization_points"]
