"""``dqc export-onnx``: a trained checkpoint as a QDQ ONNX model.

The frozen inference graph (``dqc.frontend.freeze``) goes through ``torch.onnx.export`` with
dqc's custom ops translated to standard ONNX (opset 18):

* ``dqc::quantize`` -> ``QuantizeLinear`` (int8 / uint8 codes; INT4 grids add an integer
  ``Clip``), ``dqc::dequantize`` -> ``DequantizeLinear``: the QDQ pairs ONNX Runtime fuses into
  integer kernels;
* the aggregation ``index_add`` -> ``ScatterND`` with ``reduction="add"`` (torch's own
  translation);
* GAT's integer attention softmax (``dqc.edge_softmax``) -> ``ScatterElements`` (max, add),
  a ``Gather`` from the exp table and an integer ``Div``: the same Q15 weights, bit for bit.

Inputs are a prepared graph, as the frozen model takes it: ``x [N, F]`` float32, ``src`` and
``dst [E]`` int64 (self-loops per ``dqc.self_loops``, edges sorted by target) and
``indptr [N + 1]`` int64, with N and E dynamic (``onnx_inputs`` builds them). The model's
``metadata_props`` carry what ``dqc compile model.onnx`` needs beyond the graph: the model
config, the quantizers' tracked ranges and where each weight initializer came from.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnx_ir
import onnxscript
import torch
from onnx import helper
from onnx.defs import OpSchema
from onnxscript import opset18 as op
from onnxscript.values import Op, Opset

from dqc import edge_softmax as softmax_spec
from dqc.checkpoint import load_checkpoint
from dqc.frontend.export import example_inputs
from dqc.frontend.freeze import SELF_LOOPS, freeze
from dqc.graph_prep import prepare_graph

OPSET = 18
FORMAT = "dqc-onnx"
INPUTS = ("x", "src", "dst", "indptr")


def _code_type(qmin: int) -> int:
    return onnx.TensorProto.INT8 if qmin < 0 else onnx.TensorProto.UINT8


def _scalar(value, dtype: int):
    return op.Constant(value=helper.make_tensor("value", dtype, [], [value]))


def _quantize(x, scale: float, zero_point: int, qmin: int, qmax: int):
    dtype = _code_type(qmin)
    codes = op.QuantizeLinear(x, _scalar(scale, onnx.TensorProto.FLOAT), _scalar(zero_point, dtype))
    if (qmin, qmax) in ((-128, 127), (0, 255)):
        return codes
    return op.Clip(codes, _scalar(qmin, dtype), _scalar(qmax, dtype))


def _dequantize(q, scale: float, zero_point: int):
    if q.dtype == onnx_ir.DataType.INT32:
        # GAT's Q15 softmax weights: the same exact product, but not as a DequantizeLinear,
        # which ONNX Runtime's QDQ propagation would move past an Unsqueeze into an invalid
        # int32 QuantizeLinear.
        codes = op.Cast(op.Sub(q, _scalar(zero_point, onnx.TensorProto.INT32)), to=1)
        return op.Mul(codes, _scalar(scale, onnx.TensorProto.FLOAT))
    zero = op.CastLike(_scalar(zero_point, onnx.TensorProto.INT32), q)
    return op.DequantizeLinear(q, _scalar(scale, onnx.TensorProto.FLOAT), zero)


DQC_DOMAIN = "ai.dqc"
DQC_OPSET = Opset(DQC_DOMAIN, 1)


@onnxscript.script(DQC_OPSET, default_opset=op)
def EdgeSoftmax(
    codes,
    dst,
    indptr,
    table,
    scale: float,
    zero_point: int,
    qmin: int,
    qmax: int,
    negative_slope: float,
):
    """``dqc.edge_softmax``: Q15 int32 weights of alpha codes [E, H] sorted by target ``dst``;
    ``table`` is its exp table, flattened (``scale``, ``zero_point`` and ``negative_slope``
    define it and are kept for compilers that rebuild it)."""
    one = op.Constant(value_ints=[1])
    low = op.CastLike(qmin, dst)
    width = op.Add(op.Sub(op.CastLike(qmax, dst), low), op.CastLike(1, dst))
    a = op.Sub(op.Cast(codes, to=7), low)
    index = op.Expand(op.Unsqueeze(dst, one), op.Shape(a))
    heads = op.Slice(op.Shape(a), one, op.Constant(value_ints=[2]))
    nodes_heads = op.Concat(op.Sub(op.Shape(indptr), one), heads, axis=0)
    empty = op.Expand(op.CastLike(-1, dst), nodes_heads)
    row_max = op.ScatterElements(empty, index, a, axis=0, reduction="max")
    e = op.Gather(table, op.Add(op.Mul(a, width), op.Gather(row_max, dst, axis=0)), axis=0)
    zeros = op.Expand(op.CastLike(0, dst), nodes_heads)
    s = op.Gather(op.ScatterElements(zeros, index, e, axis=0, reduction="add"), dst, axis=0)
    scaled = op.Mul(e, op.CastLike(65536, dst))
    return op.Cast(op.Div(op.Add(scaled, s), op.Add(s, s)), to=6)  # floor: both positive


def _edge_softmax_schema() -> OpSchema:
    param = OpSchema.FormalParameter
    attr = OpSchema.Attribute
    return OpSchema(
        "EdgeSoftmax",
        DQC_DOMAIN,
        1,
        inputs=[
            param("codes", "T"),
            param("dst", "tensor(int64)"),
            param("indptr", "tensor(int64)"),
            param("table", "tensor(int64)"),
        ],
        outputs=[param("weights", "tensor(int32)")],
        type_constraints=[("T", ["tensor(int8)", "tensor(uint8)"], "alpha codes")],
        attributes=[
            attr("scale", OpSchema.AttrType.FLOAT, "alpha scale"),
            attr("zero_point", OpSchema.AttrType.INT, "alpha zero point"),
            attr("qmin", OpSchema.AttrType.INT, "lowest code"),
            attr("qmax", OpSchema.AttrType.INT, "highest code"),
            attr("negative_slope", OpSchema.AttrType.FLOAT, "LeakyReLU slope"),
        ],
    )


# The schema lets the exporter emit the node; the function (added to every exported model)
# is its definition for runtimes.
if not onnx.defs.has("EdgeSoftmax", DQC_DOMAIN):
    onnx.defs.register_schema(_edge_softmax_schema())
_EDGE_SOFTMAX_OP = Op(DQC_OPSET, "EdgeSoftmax", onnx.defs.get_schema("EdgeSoftmax", 1, DQC_DOMAIN))
assert softmax_spec.TABLE_BITS == 16  # the 65536 in EdgeSoftmax


def _edge_softmax(codes, dst, indptr, scale, zero_point, qmin, qmax, negative_slope):
    table = softmax_spec.exp_table(scale, zero_point, qmin, qmax, negative_slope)
    flat = op.Constant(value=onnx.numpy_helper.from_array(table.reshape(-1).astype(np.int64)))
    return _EDGE_SOFTMAX_OP(
        codes,
        dst,
        indptr,
        flat,
        scale=scale,
        zero_point=zero_point,
        qmin=qmin,
        qmax=qmax,
        negative_slope=negative_slope,
    )


def _per_edge_index(dst, like):
    """``dst`` broadcast over the trailing (head) axis of ``like`` [E, H]."""
    return op.Expand(op.Unsqueeze(dst, _ints(1)), op.Shape(like))


def _ints(*values: int):
    return op.Constant(value_ints=list(values))


def _node_buffer(indptr, like, fill: float, dtype: int):
    """``[N, H]`` filled with ``fill``; N from ``indptr``, H from ``like`` [E, H]."""
    num_nodes = op.Sub(op.Shape(indptr), _ints(1))
    heads = op.Slice(op.Shape(like), _ints(1), _ints(2))
    value = helper.make_tensor("value", dtype, [1], [fill])
    return op.ConstantOfShape(op.Concat(num_nodes, heads, axis=0), value=value)


def _edge_softmax_float(logits, dst, indptr, negative_slope):
    """PyG's ``softmax(leaky_relu(logits), dst)``: max-shifted exp over each target's edges."""
    scores = op.LeakyRelu(logits, alpha=negative_slope)
    index = _per_edge_index(dst, scores)
    row_max = op.ScatterElements(
        _node_buffer(indptr, scores, -np.inf, onnx.TensorProto.FLOAT),
        index,
        scores,
        axis=0,
        reduction="max",
    )
    e = op.Exp(op.Sub(scores, op.Gather(row_max, dst, axis=0)))
    sums = op.ScatterElements(
        _node_buffer(indptr, scores, 0.0, onnx.TensorProto.FLOAT),
        index,
        e,
        axis=0,
        reduction="add",
    )
    return op.Div(e, op.Add(op.Gather(sums, dst, axis=0), _scalar(1e-16, onnx.TensorProto.FLOAT)))


TRANSLATIONS = {
    torch.ops.dqc.quantize.default: _quantize,
    torch.ops.dqc.dequantize.default: _dequantize,
    torch.ops.dqc.edge_softmax.default: _edge_softmax,
    torch.ops.dqc.edge_softmax_float.default: _edge_softmax_float,
}


@contextlib.contextmanager
def _quiet_exporter():
    """Silence torch.onnx's chatter (missing torchvision, renamed dims, empty attributes)."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnx_ir", "onnxscript")]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)


def onnx_inputs(x: np.ndarray, edge_index: np.ndarray, self_loops: str) -> dict[str, np.ndarray]:
    """The exported model's inputs for a PyG-style graph (validated and prepared)."""
    graph = prepare_graph(np.asarray(edge_index), x.shape[0], self_loops)
    return {
        "x": np.ascontiguousarray(x, np.float32),
        "src": graph.src.astype(np.int64),
        "dst": graph.dst.astype(np.int64),
        "indptr": graph.indptr.astype(np.int64),
    }


def export_onnx(
    checkpoint: str | os.PathLike, output: str | os.PathLike, quantized: bool = True
) -> Path:
    """Write ``checkpoint`` as ONNX to ``output``; ``quantized=False`` exports its FP32 twin."""
    ckpt = load_checkpoint(checkpoint)
    config = ckpt.config
    if config.task == "graph" or config.batch_norm:
        raise ValueError(
            f"{checkpoint}: ONNX export covers node-level models without BatchNorm only"
        )
    quantized = quantized and config.scheme != "fp32"
    frozen = freeze(ckpt.model, config.arch, quantized)
    nodes = torch.export.Dim("num_nodes", min=2)
    edges = torch.export.Dim("num_edges", min=1)
    with _quiet_exporter():
        program = torch.onnx.export(
            frozen,
            example_inputs(config.in_channels),
            dynamic_shapes=({0: nodes}, {0: edges}, {0: edges}, {0: nodes + 1}),
            input_names=list(INPUTS),
            output_names=["logits"],
            opset_version=OPSET,
            custom_translation_table=TRANSLATIONS,
            dynamo=True,
            verbose=False,
        )
    model = program.model_proto
    if any(node.domain == DQC_DOMAIN for node in model.graph.node):
        model.functions.append(EdgeSoftmax.to_function_proto())
    state = ckpt.model.state_dict()
    metadata = {
        "dqc.format": FORMAT,
        "dqc.dataset": ckpt.dataset,
        "dqc.arch": config.arch,
        "dqc.scheme": config.scheme if quantized else "fp32",
        "dqc.trained_scheme": config.scheme,
        "dqc.self_loops": SELF_LOOPS[config.arch],
        "dqc.model": json.dumps(config.to_dict()),
        # Scalars of the state dict (tracked ranges, GIN's eps): exact as Python floats.
        "dqc.scalars": json.dumps(
            {k: v.reshape(-1).tolist() for k, v in state.items() if v.numel() == 1}
        ),
        "dqc.sources": json.dumps(frozen.weight_sources()),
    }
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, output)
    return output
