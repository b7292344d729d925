"""Converters from exported torch ops to Relax that TVM's importer lacks.

``from_exported_program`` has no converter for PyG's aggregation ops (``index_add``,
``scatter_add``) or for dqc's own custom ops; ``DQC_CONVERT_MAP`` supplies them, keyed by the
op's ``__name__`` as the importer looks them up.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from torch import fx
from tvm import relax

from dqc import relax_ops


def _emit(importer, expr: relax.Expr) -> relax.Var:
    return importer.block_builder.emit(expr)


def _quantize(node: fx.Node, importer) -> relax.Var:
    x, scale, zero_point, qmin, qmax = importer.retrieve_args(node)
    return _emit(
        importer,
        relax_ops.call(
            "dqc.quantize",
            [x],
            scale=float(scale),
            zero_point=int(zero_point),
            qmin=int(qmin),
            qmax=int(qmax),
        ),
    )


def _dequantize(node: fx.Node, importer) -> relax.Var:
    q, scale, zero_point = importer.retrieve_args(node)
    return _emit(
        importer,
        relax_ops.call("dqc.dequantize", [q], scale=float(scale), zero_point=int(zero_point)),
    )


def _index_add(node: fx.Node, importer) -> relax.Var:
    base, dim, index, source = importer.retrieve_args(node)[:4]
    alpha = node.kwargs.get("alpha", 1)
    if dim != 0 or alpha != 1:
        raise NotImplementedError(f"index_add supports dim=0, alpha=1; got dim={dim}, {alpha=}")
    return _emit(importer, relax_ops.call("dqc.index_add", [base, index, source]))


def _scatter_add(node: fx.Node, importer) -> relax.Var:
    base, dim, index, source = importer.retrieve_args(node)
    return _emit(importer, relax.op.scatter_elements(base, index, source, dim, "add"))


def _edge_softmax(node: fx.Node, importer) -> relax.Var:
    codes, dst, indptr, scale, zero_point, qmin, qmax, slope = importer.retrieve_args(node)
    return _emit(
        importer,
        relax_ops.call(
            "dqc.edge_softmax",
            [codes, dst, indptr],
            scale=float(scale),
            zero_point=int(zero_point),
            qmin=int(qmin),
            qmax=int(qmax),
            negative_slope=float(slope),
        ),
    )


def _edge_softmax_float(node: fx.Node, importer) -> relax.Var:
    logits, dst, indptr, slope = importer.retrieve_args(node)
    return _emit(
        importer,
        relax_ops.call(
            "dqc.edge_softmax_float", [logits, dst, indptr], negative_slope=float(slope)
        ),
    )


def _segment_pool(op: str, node: fx.Node, importer) -> relax.Var:
    x, graph_ptr = importer.retrieve_args(node)
    return _emit(importer, relax_ops.call(op, [x, graph_ptr]))


DQC_CONVERT_MAP: dict[str, Callable[[fx.Node, object], relax.Var]] = {
    "quantize.default": _quantize,
    "dequantize.default": _dequantize,
    "index_add.default": _index_add,
    "scatter_add.default": _scatter_add,
    "edge_softmax.default": _edge_softmax,
    "edge_softmax_float.default": _edge_softmax_float,
    "segment_mean.default": functools.partial(_segment_pool, "dqc.segment_mean"),
    "segment_sum.default": functools.partial(_segment_pool, "dqc.segment_sum"),
}
