"""Inference graphs of trained models, with quantization as explicit quantize/dequantize ops.

``freeze(model)`` rebuilds a trained GCN / GAT / GIN as a plain module made of torch ops that
``torch.export`` traces and dqc's importer understands: no masks, no PyG ``MessagePassing``
machinery, no data-dependent shapes. Each DQ quantizer becomes ``dequantize(quantize(x))``
with its frozen (scale, zero point); weights are stored as integer codes.

The graph arrives prepared (``dqc.graph_prep``): self-loops added (GCN, GAT) or removed
(GIN), edges sorted by target, and ``indptr`` the CSR row pointer of the targets::

    forward(x, src, dst, indptr) -> logits

It computes what the trained model computes in eval mode; float sums may round differently
because edges come in another order. GAT's softmax is the integer one of
``dqc.edge_softmax`` (the float model's within ~2^-16 per weight).
"""

from __future__ import annotations

import operator

import torch
import torch.nn.functional as F
from torch import nn

from dqc.edge_softmax import WEIGHT_SCALE
from dqc.frontend import torch_ops
from dqc.models import quantization_points
from dqc.models.gat import NEGATIVE_SLOPE
from dqc.qparams import QParams

SELF_LOOPS = {"gcn": "add", "gat": "add", "gin": "remove"}


class _Frozen(nn.Module):
    """Holds the frozen quantization parameters of one layer's points (none: float)."""

    def __init__(self, model: nn.Module, layer: str, quantized: bool):
        super().__init__()
        self.layer_name = layer
        self.qparams = _layer_qparams(model, layer, quantized)
        self.sources: dict[str, dict] = {}

    def fq(self, x: torch.Tensor, role: str) -> torch.Tensor:
        qp = self.qparams.get(role)
        return x if qp is None else torch_ops.fake_quantize_with(x, qp)

    def freeze_weight(self, layer: nn.Module, name: str, path: str, role: str = "weight"):
        """Store ``layer``'s tensor at ``path`` as integer codes (as is for float models)."""
        qp = self.qparams.get(role)
        self.keep(layer, name, path, torch_ops.quantize_with if qp is not None else None, role)

    def keep(self, layer: nn.Module, name: str, path: str, encode=None, role=None) -> None:
        """Store ``layer``'s tensor at ``path`` as buffer ``name`` (``encode``d with the
        role's qparams if given), remembering where it came from (``weight_sources``)."""
        tensor = operator.attrgetter(path)(layer).detach().clone()
        self.register_buffer(name, tensor if encode is None else encode(tensor, self.qparams[role]))
        self.sources[name] = {
            "state": f"{self.layer_name}.{path}",
            "layer": self.layer_name,
            "role": role if encode is not None else None,
        }

    def weight(self, name: str, role: str = "weight") -> torch.Tensor:
        qp, stored = self.qparams.get(role), getattr(self, name)
        return stored if qp is None else torch_ops.dequantize_with(stored, qp)


def _layer_qparams(model: nn.Module, layer: str, quantized: bool) -> dict[str, QParams]:
    if not quantized:
        return {}
    points = quantization_points(model)
    return {role: q.qparams() for (name, role), q in points.items() if name == layer}


def _scatter_sum(messages: torch.Tensor, dst: torch.Tensor, num_nodes: int) -> torch.Tensor:
    out = messages.new_zeros((num_nodes, *messages.shape[1:]))
    return out.index_add(0, dst, messages)


class FrozenGCNConv(_Frozen):
    def __init__(self, model: nn.Module, layer: str, quantized: bool):
        super().__init__(model, layer, quantized)
        conv = model.get_submodule(layer)
        self.freeze_weight(conv, "lin_weight", "lin.weight")
        self.keep(conv, "bias", "bias")

    def forward(self, x, src, dst, norm):
        x = self.fq(x, "input")
        h = self.fq(F.linear(x, self.weight("lin_weight")), "feature")
        norm = self.fq(norm, "norm")
        messages = self.fq(norm.unsqueeze(-1) * h.index_select(0, src), "message")
        aggregated = self.fq(_scatter_sum(messages, dst, x.size(0)), "aggregate")
        return self.fq(aggregated + self.bias, "update")


class FrozenGATConv(_Frozen):
    def __init__(self, model: nn.Module, layer: str, quantized: bool):
        super().__init__(model, layer, quantized)
        conv = model.get_submodule(layer)
        self.heads, self.channels, self.concat = conv.heads, conv.out_channels, conv.concat
        self.freeze_weight(conv, "lin_weight", "lin.weight")
        self.freeze_weight(conv, "att", "att", role="attention")
        self.keep(conv, "bias", "bias")

    def forward(self, x, src, dst, indptr):
        heads, channels = self.heads, self.channels
        x = self.fq(x, "input")
        h = self.fq(F.linear(x, self.weight("lin_weight")), "feature")
        h = h.view(-1, heads, channels)
        att = self.weight("att", role="attention")
        logit_dst = (h * att[:, :channels]).sum(-1)
        logit_src = (h * att[:, channels:]).sum(-1)
        logits = logit_src.index_select(0, src) + logit_dst.index_select(0, dst)
        weights = self._softmax(logits, dst, indptr)
        messages = self.fq(h.index_select(0, src) * weights.unsqueeze(-1), "message")
        out = self.fq(_scatter_sum(messages, dst, x.size(0)), "aggregate")
        out = out.reshape(-1, heads * channels) if self.concat else out.mean(dim=1)
        return self.fq(out + self.bias, "update")

    def _softmax(self, logits, dst, indptr):
        qp = self.qparams.get("alpha")
        if qp is None:
            return torch.ops.dqc.edge_softmax_float(logits, dst, indptr, NEGATIVE_SLOPE)
        codes = torch_ops.quantize_with(logits, qp)
        weights = torch.ops.dqc.edge_softmax(
            codes, dst, indptr, qp.scale, qp.zero_point, qp.qmin, qp.qmax, NEGATIVE_SLOPE
        )
        return torch.ops.dqc.dequantize(weights, WEIGHT_SCALE, 0)


class FrozenQuantLinear(_Frozen):
    def __init__(self, model: nn.Module, layer: str, quantized: bool):
        super().__init__(model, layer, quantized)
        linear = model.get_submodule(layer)
        folded = linear.bn is not None  # BatchNorm's running statistics folded in
        self.freeze_weight(linear, "lin_weight", "folded_weight" if folded else "lin.weight")
        self.keep(linear, "bias", "folded_bias" if folded else "lin.bias")

    def forward(self, x):
        x = self.fq(x, "input")
        return self.fq(F.linear(x, self.weight("lin_weight"), self.bias), "feature")


class FrozenGINConv(_Frozen):
    def __init__(self, model: nn.Module, layer: str, quantized: bool):
        super().__init__(model, layer, quantized)
        conv = model.get_submodule(layer)
        self.freeze_weight(conv, "lin_weight", "lin.weight")
        self.keep(conv, "lin_bias", "lin.bias")
        self.keep(conv, "eps", "eps")
        self.mlp = nn.ModuleList(
            FrozenQuantLinear(model, f"{layer}.mlp.{i}", quantized)
            for i, module in enumerate(conv.mlp)
            if not isinstance(module, nn.ReLU)
        )
        self.norm_after_relu = conv.norm is not None  # a per-channel scale and shift
        if self.norm_after_relu:
            self.keep(conv, "norm_scale", "norm_scale")
            self.keep(conv, "norm_shift", "norm_shift")

    def forward(self, x, src, dst, indptr):
        x = self.fq(x, "input")
        h = self.fq(F.linear(x, self.weight("lin_weight")), "feature")
        messages = self.fq(h.index_select(0, src), "message")
        aggregated = self.fq(_scatter_sum(messages, dst, x.size(0)), "aggregate")
        out = (1 + self.eps) * h + aggregated + self.lin_bias
        for linear in self.mlp:
            out = linear(F.relu(out))
        if self.norm_after_relu:
            out = F.relu(out) * self.norm_scale + self.norm_shift
        return self.fq(out, "update")


class FrozenModel(nn.Module):
    """``forward(x, src, dst, indptr)``: the layers of a trained node classifier, ReLU between
    (unless the layers end in their own normalization, ``relu_between_layers``)."""

    def __init__(self, model: nn.Module, arch: str, quantized: bool = True, prefix: str = ""):
        super().__init__()
        self.arch = arch
        body = model.get_submodule(prefix.rstrip("."))
        self.relu_between_layers = body.relu_between_layers
        conv = {"gcn": FrozenGCNConv, "gat": FrozenGATConv, "gin": FrozenGINConv}[arch]
        convs = model.get_submodule(f"{prefix}convs")
        self.convs = nn.ModuleList(
            conv(model, f"{prefix}convs.{i}", quantized) for i in range(len(convs))
        )

    def weight_sources(self) -> dict[str, dict]:
        """Buffer name -> ``{"state": state-dict key, "layer": ..., "role": role or None}``:
        which trained tensor each stored tensor is (codes of ``(layer, role)`` if a role)."""
        return {
            f"{prefix}.{name}": source
            for prefix, module in self.named_modules()
            if isinstance(module, _Frozen)
            for name, source in module.sources.items()
        }

    def forward(self, x, src, dst, indptr):
        graph = (src, dst, _gcn_norm(x.size(0), src, dst) if self.arch == "gcn" else indptr)
        for i, conv in enumerate(self.convs):
            if i > 0 and self.relu_between_layers:
                x = F.relu(x)
            x = conv(x, *graph)
        return x


class FrozenGraphModel(FrozenModel):
    """``forward(x, src, dst, indptr, graph_ptr)``: a trained ``GraphModel`` (convolutions,
    ReLU, mean or sum per graph of the batch ``graph_ptr`` describes, two-layer readout)."""

    def __init__(self, model: nn.Module, arch: str, quantized: bool = True):
        super().__init__(model, arch, quantized, prefix="body.")
        self.readout = nn.ModuleList(
            FrozenQuantLinear(model, f"readout.{i}", quantized) for i in range(len(model.readout))
        )
        self.pool = {"mean": torch.ops.dqc.segment_mean, "add": torch.ops.dqc.segment_sum}[
            model.pooling
        ]

    def forward(self, x, src, dst, indptr, graph_ptr):
        nodes = super().forward(x, src, dst, indptr)
        h = self.pool(F.relu(nodes) if self.relu_between_layers else nodes, graph_ptr)
        for i, linear in enumerate(self.readout):
            h = linear(F.relu(h) if i > 0 else h)
        return h


def _gcn_norm(num_nodes: int, src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """Symmetric normalization ``1/sqrt(deg(src) deg(dst))`` of a graph with self-loops.

    ``1 / sqrt`` instead of PyG's ``pow(-0.5)``: both IEEE operations are correctly rounded,
    so every backend computes identical bits (``pow`` depends on the libm).
    """
    ones = torch.ones(dst.size(0), dtype=torch.float32)  # (TVM's ones_like drops dtype)
    degree = torch.zeros(num_nodes, dtype=torch.float32).index_add(0, dst, ones)
    inv_sqrt = 1.0 / torch.sqrt(degree)
    return inv_sqrt.index_select(0, src) * inv_sqrt.index_select(0, dst)


def freeze(model: nn.Module, arch: str, quantized: bool = True) -> FrozenModel:
    """The inference graph of a trained ``model`` (eval mode, no gradients).

    ``quantized=False`` drops every quantization point: the float program of the same
    weights, which dqc compiles as its FP32 baseline."""
    frozen_class = FrozenGraphModel if hasattr(model, "readout") else FrozenModel
    return frozen_class(model.eval(), arch, quantized).eval().requires_grad_(False)
