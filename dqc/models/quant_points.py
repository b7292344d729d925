"""The named quantization points of a layer.

Every quantized layer keeps its quantizers in ``self.quant``, one child module per tensor
role (``self.quant.message(x, protect)``), so a quantizer's module path is
``<layer>.quant.<role>``: the stable (layer, role) name the compiler reads scales and zero
points by.
"""

from __future__ import annotations

from torch import nn

from dqc.quantizer import Quantizer
from dqc.schemes import Scheme

ROLES = (
    "input",  # node features entering the layer
    "weight",  # the layer's weight matrix
    "feature",  # X·W
    "norm",  # GCN symmetric normalization, per edge
    "attention",  # GAT attention vector
    "alpha",  # GAT attention logits, per edge and head, before LeakyReLU
    "message",  # per-edge messages
    "aggregate",  # sum of messages per target node
    "update",  # layer output
)
INPUT_KINDS = ("data", "relu", "signed")


class QuantPoints(nn.Module):
    """A layer's quantizers as named children, one per role."""

    def __init__(self, scheme: Scheme, roles: tuple[str, ...], input_kind: str = "relu"):
        """``input_kind`` says what the ``input`` role sees: ``"data"`` (raw dataset features),
        ``"relu"`` (a ReLU output, unsigned) or ``"signed"`` (anything else). As in DQ, every
        other role is signed."""
        super().__init__()
        unknown = set(roles) - set(ROLES)
        if unknown:
            raise ValueError(f"unknown quantization roles {sorted(unknown)}")
        if input_kind not in INPUT_KINDS:
            raise ValueError(f"input_kind must be one of {INPUT_KINDS}, got {input_kind!r}")
        for role in roles:
            if role == "input":
                quantizer = scheme.quantizer(input_kind != "relu", input_kind == "data")
            else:
                quantizer = scheme.quantizer()
            self.add_module(role, quantizer)


def quantization_points(model: nn.Module) -> dict[tuple[str, str], Quantizer]:
    """Every quantizer of ``model`` keyed by (layer path, role); empty for FP32 models."""
    points = {}
    for name, module in model.named_modules():
        if isinstance(module, QuantPoints):
            layer = name.removesuffix(".quant")
            for role, quantizer in module.named_children():
                if isinstance(quantizer, Quantizer):
                    points[(layer, role)] = quantizer
    return points


WEIGHT_ROLES = ("weight", "attention")  # points that quantize parameters, not activations


def track_weights(model: nn.Module, weight_range: str) -> None:
    """Give every weight quantizer of ``model`` the range tracker ``weight_range``:
    ``"scheme"`` keeps the scheme's; ``"minmax"`` tracks the true extremes.

    Degree-Quant tracks weights with percentiles like activations, which clips the largest
    weights of a layer; with the clipped gradient those weights then get no gradient but
    weight decay, so training holds them at the clip. Weights have no degree-driven outliers
    to cut, and a min/max range keeps every one of them (a per-cell training setting)."""
    if weight_range == "scheme":
        return
    if weight_range != "minmax":
        raise ValueError(f"weight_range must be 'scheme' or 'minmax', got {weight_range!r}")
    for (_, role), quantizer in quantization_points(model).items():
        if role in WEIGHT_ROLES:
            quantizer.tracker = "minmax"
