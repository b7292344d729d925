"""The integer program dqc compiles, written directly in NumPy: the oracle for bit-exact tests.

``IntegerReference(checkpoint).predict(x, edge_index[, batch])`` runs a quantized GCN / GAT /
GIN (node-level, or graph-level with mean pooling and a readout) with
nothing but integer codes, int64 accumulators and ``dqc.fixed_point`` requantization, from the
checkpoint's quantization parameters, without TVM. It also documents the arithmetic: each
layer below reads as the equations the compiled kernels implement.

Real requantize multipliers are formed as the compiler forms them (products of scales, then
one division by the output scale, in float64) so the fixed-point constants match exactly.
"""

from __future__ import annotations

import os

import numpy as np

from dqc import edge_softmax as softmax_spec
from dqc.checkpoint import load_checkpoint
from dqc.edge_softmax import WEIGHT_SCALE
from dqc.fixed_point import FixedPoint, requantize, requantize_product
from dqc.frontend.freeze import SELF_LOOPS
from dqc.graph_prep import PreparedGraph, check_batch, prepare_graph
from dqc.models import quantization_points
from dqc.models.gat import NEGATIVE_SLOPE
from dqc.pooling import pool_codes
from dqc.qparams import QParams


class Codes:
    """Integer codes with their quantization parameters: value = scale * (codes - zero)."""

    def __init__(self, codes: np.ndarray, qp: QParams):
        self.codes, self.qp = codes.astype(np.int64), qp

    def centered(self) -> np.ndarray:
        return self.codes - self.qp.zero_point

    def dequantize(self) -> np.ndarray:
        return self.qp.dequantize(self.codes)


def requantize_to(terms, out: QParams, bias: np.ndarray | None = None) -> Codes:
    """Codes of ``sum_i scale_i * values_i + bias`` on ``out``'s grid.

    ``terms`` are ``(values, scale)`` with ``values`` int64 arrays whose zero is already
    subtracted; ``bias`` is real (a float32 parameter), per channel.
    """
    reals = [scale / out.scale for _, scale in terms]
    scaled_bias = None if bias is None else bias.astype(np.float64) / out.scale
    bound = 0.0 if scaled_bias is None else float(np.abs(scaled_bias).max())
    fixed = FixedPoint.from_reals(reals, bound)
    fixed_bias = None if scaled_bias is None else fixed.bias(scaled_bias)
    values = [v for v, _ in terms]
    codes = requantize(
        values, [0] * len(values), fixed, out.zero_point, out.qmin, out.qmax, fixed_bias
    )
    return Codes(codes, out)


def centered(x: Codes) -> tuple[np.ndarray, float]:
    """``x`` as a ``requantize_to`` term: its zero-centred codes and their scale."""
    return x.centered(), x.qp.scale


def segment_sum(values: np.ndarray, graph: PreparedGraph) -> np.ndarray:
    """Sum of per-edge ``values`` over each target's in-edges (edges sorted by target)."""
    out = np.zeros((graph.num_nodes, *values.shape[1:]), np.int64)
    np.add.at(out, graph.dst, values)
    return out


def linear(x: Codes, weight: Codes, out: QParams, bias=None) -> Codes:
    """``x W^T (+ b)``: int64 dot products of zero-centred codes, then requantize."""
    acc = x.centered() @ weight.centered().T
    return requantize_to([(acc, x.qp.scale * weight.qp.scale)], out, bias)


def relu_to(x: Codes, out: QParams) -> Codes:
    """ReLU on codes is ``max(q, zero)``; then move to ``out``'s grid."""
    return requantize_to(
        [(np.maximum(x.codes, x.qp.zero_point) - x.qp.zero_point, x.qp.scale)], out
    )


class IntegerReference:
    """NumPy integer inference of a quantized checkpoint (``dq-*`` / ``qat-*``)."""

    def __init__(self, checkpoint: str | os.PathLike):
        ckpt = load_checkpoint(checkpoint)
        if ckpt.config.scheme == "fp32":
            raise ValueError(f"{checkpoint}: an FP32 model has no integer program")
        self.arch, self.model = ckpt.config.arch, ckpt.model
        self.qparams = {key: q.qparams() for key, q in quantization_points(self.model).items()}

    def qp(self, layer: str, role: str) -> QParams:
        return self.qparams[(layer, role)]

    def weight(self, layer: str, tensor, role: str = "weight") -> Codes:
        qp = self.qp(layer, role)
        return Codes(qp.quantize(tensor.detach().numpy()), qp)

    def predict(self, x: np.ndarray, edge_index: np.ndarray, batch=None) -> np.ndarray:
        """Float logits (the dequantized codes of the last layer): per node, or per graph of
        ``batch`` (``None``: one graph) for graph-level models."""
        graph = prepare_graph(edge_index, x.shape[0], SELF_LOOPS[self.arch])
        layer_fn = {"gcn": self.gcn, "gat": self.gat, "gin": self.gin}[self.arch]
        prefix = "body." if hasattr(self.model, "readout") else ""
        relu = self.model.get_submodule(prefix.rstrip(".")).relu_between_layers
        h = None
        for i in range(len(self.model.get_submodule(f"{prefix}convs"))):
            layer = f"{prefix}convs.{i}"
            qp_in = self.qp(layer, "input")
            if h is None:
                inputs = Codes(qp_in.quantize(x), qp_in)
            else:
                inputs = relu_to(h, qp_in) if relu else requantize_to([centered(h)], qp_in)
            h = layer_fn(layer, inputs, graph)
        if prefix:
            h = self.readout(h, check_batch(batch, x.shape[0])[:-1])
        return h.dequantize()

    def readout(self, nodes: Codes, graph_ptr: np.ndarray) -> Codes:
        """ReLU (unless the layers end in a normalization), mean or sum per graph
        (``dqc.pooling``), then the two readout linears."""
        if self.model.body.relu_between_layers:
            values = np.maximum(nodes.codes, nodes.qp.zero_point) - nodes.qp.zero_point
        else:
            values = nodes.centered()
        pooled, factor = pool_codes(values, graph_ptr, self.model.pooling)
        h = None
        for i, linear_layer in enumerate(self.model.readout):
            name = f"readout.{i}"
            qp_in = self.qp(name, "input")
            if h is None:
                x_in = requantize_to([(pooled, nodes.qp.scale * factor)], qp_in)
            else:
                x_in = relu_to(h, qp_in)
            h = linear(
                x_in,
                self.weight(name, linear_layer.folded_weight),
                self.qp(name, "feature"),
                linear_layer.folded_bias.detach().numpy(),
            )
        return h

    def gcn(self, layer: str, x: Codes, graph: PreparedGraph) -> Codes:
        conv = self.model.get_submodule(layer)
        h = linear(x, self.weight(layer, conv.lin.weight), self.qp(layer, "feature"))
        degree = np.bincount(graph.dst, minlength=graph.num_nodes).astype(np.float32)
        inv_sqrt = np.float32(1.0) / np.sqrt(degree)
        qp_norm = self.qp(layer, "norm")
        norm = Codes(qp_norm.quantize(inv_sqrt[graph.src] * inv_sqrt[graph.dst]), qp_norm)
        qp_message = self.qp(layer, "message")
        fixed = FixedPoint.from_reals([norm.qp.scale * h.qp.scale / qp_message.scale])
        codes = requantize_product(
            norm.centered()[:, None],
            h.centered()[graph.src],
            fixed,
            qp_message.zero_point,
            qp_message.qmin,
            qp_message.qmax,
        )
        messages = Codes(codes, qp_message)
        aggregated = requantize_to(
            [(segment_sum(messages.centered(), graph), messages.qp.scale)],
            self.qp(layer, "aggregate"),
        )
        return requantize_to(
            [(aggregated.centered(), aggregated.qp.scale)],
            self.qp(layer, "update"),
            conv.bias.detach().numpy(),
        )

    def gin(self, layer: str, x: Codes, graph: PreparedGraph) -> Codes:
        conv = self.model.get_submodule(layer)
        h = linear(x, self.weight(layer, conv.lin.weight), self.qp(layer, "feature"))
        messages = requantize_to([(h.centered()[graph.src], h.qp.scale)], self.qp(layer, "message"))
        aggregated = requantize_to(
            [(segment_sum(messages.centered(), graph), messages.qp.scale)],
            self.qp(layer, "aggregate"),
        )
        one_plus_eps = float(np.add(conv.eps.detach().numpy(), np.float32(1.0))[0])
        terms = [
            (h.centered(), h.qp.scale * one_plus_eps),
            (aggregated.centered(), aggregated.qp.scale),
        ]
        bias = conv.lin.bias.detach().numpy()
        out = None
        for i, module in enumerate(conv.mlp):
            if not hasattr(module, "quant"):
                continue  # the ReLU before each QuantLinear, applied below on codes
            name = f"{layer}.mlp.{i}"
            qp_in = self.qp(name, "input")
            if out is None:  # ReLU of the combination, quantized straight to the MLP input
                combined = requantize_to(terms, qp_in, bias)
                x_in = Codes(np.maximum(combined.codes, qp_in.zero_point), qp_in)
            else:
                x_in = relu_to(out, qp_in)
            out = linear(
                x_in,
                self.weight(name, module.folded_weight),
                self.qp(name, "feature"),
                module.folded_bias.detach().numpy(),
            )
        if conv.norm is None:
            return requantize_to([centered(out)], self.qp(layer, "update"))
        # ReLU, then BatchNorm as a per-channel scale and shift: a per-channel requantize
        scale = conv.norm_scale.detach().numpy().astype(np.float64)
        relu = np.maximum(out.codes, out.qp.zero_point) - out.qp.zero_point
        shift = conv.norm_shift.detach().numpy()
        return requantize_to([(relu, out.qp.scale * scale)], self.qp(layer, "update"), shift)

    def gat(self, layer: str, x: Codes, graph: PreparedGraph) -> Codes:
        conv = self.model.get_submodule(layer)
        heads, channels = conv.heads, conv.out_channels
        h = linear(x, self.weight(layer, conv.lin.weight), self.qp(layer, "feature"))
        hc = h.centered().reshape(-1, heads, channels)
        att = self.weight(layer, conv.att, role="attention")
        att_c, logit_scale = att.centered(), h.qp.scale * att.qp.scale
        logit_dst = (hc * att_c[:, :channels]).sum(-1)
        logit_src = (hc * att_c[:, channels:]).sum(-1)
        qp_alpha = self.qp(layer, "alpha")
        alpha = requantize_to(
            [(logit_src[graph.src], logit_scale), (logit_dst[graph.dst], logit_scale)], qp_alpha
        )
        weights = softmax_spec.edge_softmax(
            alpha.codes,
            graph.indptr,
            qp_alpha.scale,
            qp_alpha.zero_point,
            qp_alpha.qmin,
            qp_alpha.qmax,
            NEGATIVE_SLOPE,
        ).astype(np.int64)
        products = hc[graph.src] * weights[:, :, None]
        messages = requantize_to([(products, h.qp.scale * WEIGHT_SCALE)], self.qp(layer, "message"))
        aggregated = requantize_to(
            [(segment_sum(messages.centered(), graph), messages.qp.scale)],
            self.qp(layer, "aggregate"),
        )
        bias = conv.bias.detach().numpy()
        if conv.concat:
            term = (aggregated.centered().reshape(graph.num_nodes, -1), aggregated.qp.scale)
        else:
            term = (aggregated.centered().sum(1), aggregated.qp.scale / heads)
        return requantize_to([term], self.qp(layer, "update"), bias)
