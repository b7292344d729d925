"""GCN, GAT and GIN with Degree-Quant quantization points, built from a plain config dict."""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, fields

from torch import nn

from dqc.models.gat import GAT
from dqc.models.gcn import GCN
from dqc.models.gin import GIN
from dqc.models.quant_points import ROLES, quantization_points
from dqc.schemes import get_scheme

ARCHS = ("gcn", "gat", "gin")


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
            expected = {"str": str, "int": int, "float": (int, float)}[known[name].type]
            if not isinstance(value, expected) or isinstance(value, bool):
                raise ValueError(f"model config {name!r} has a bad value {value!r}")
        return cls(**data)


def build_model(config: ModelConfig) -> nn.Module:
    """A freshly initialised model for ``config``."""
    scheme = get_scheme(config.scheme)
    sizes = (config.in_channels, config.hidden_channels, config.out_channels)
    if config.arch == "gcn":
        return GCN(*sizes, scheme, dropout=config.dropout)
    if config.arch == "gat":
        return GAT(*sizes, scheme, heads=config.heads, dropout=config.dropout)
    if config.arch == "gin":
        return GIN(*sizes, scheme, dropout=config.dropout)
    raise ValueError(f"unknown architecture {config.arch!r}; choose from {', '.join(ARCHS)}")


__all__ = ["ARCHS", "ROLES", "ModelConfig", "build_model", "quantization_points"]
