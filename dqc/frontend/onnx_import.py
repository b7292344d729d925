"""Relax import of an ONNX model exported by ``dqc export-onnx``, through TVM's ONNX frontend.

TVM's frontend has no hook for custom converters, so ``import_onnx`` swaps its converter table
for the length of one import and adds dqc's own:

* ``QuantizeLinear`` / ``DequantizeLinear`` with per-tensor constant scale and zero point ->
  ``dqc.quantize`` / ``dqc.dequantize`` (an integer ``Clip`` right after a quantize narrows its
  grid: INT4). dqc's quantize rounds ``x / scale + zero_point`` (Degree-Quant's arithmetic,
  the one the model was trained with); ONNX rounds ``x / scale`` and then adds the zero point.
  The two differ only when adding the zero point in float32 rounds a value onto or off a
  half-way point, and reading it as DQ's keeps the program identical to ``model.pt``'s.
* ``ScatterND(reduction="add")`` of rows (indices ``[E, 1]``) -> ``dqc.index_add`` (TVM's
  own scatter import is not used for aggregations);
* ``ai.dqc.EdgeSoftmax`` -> ``dqc.edge_softmax`` (its exp table is rebuilt from the node's
  attributes and must equal the one in the file).

``canonicalize`` then removes what the ONNX form adds around the graph inputs (wrap-around of
negative gather indices, which dqc's input check rules out; no-op reshapes), so dqc's passes
see the same program as from ``torch.export``.
"""

from __future__ import annotations

import contextlib

import numpy as np
import onnx
import tvm
from tvm import relax, tirx
from tvm.relax.frontend.onnx import onnx_frontend

from dqc import edge_softmax as softmax_spec
from dqc import relax_ops
from dqc._tvm import Analyzer, constant_value, is_constant
from dqc.onnx_export import INPUTS


def _constant(expr: relax.Expr, what: str):
    if not is_constant(expr) or constant_value(expr).size != 1:
        raise ValueError(f"dqc needs a per-tensor constant {what}, got {expr}")
    return constant_value(expr).reshape(()).item()


class _QuantizeLinear(onnx_frontend.OnnxOpConverter):
    @classmethod
    def _impl_v10(cls, bb, inputs, attr, params):
        x, scale, zero_point = [*inputs, None][:3]
        if zero_point is None:
            raise ValueError("QuantizeLinear without a zero point is not a dqc export")
        dtype = str(zero_point.ty.dtype)
        if dtype not in ("int8", "uint8"):
            raise ValueError(f"QuantizeLinear to {dtype}: dqc reads int8 / uint8 codes")
        info = np.iinfo(dtype)
        return relax_ops.call(
            "dqc.quantize",
            [x],
            scale=float(_constant(scale, "QuantizeLinear scale")),
            zero_point=int(_constant(zero_point, "QuantizeLinear zero point")),
            qmin=int(info.min),
            qmax=int(info.max),
        )


class _DequantizeLinear(onnx_frontend.OnnxOpConverter):
    @classmethod
    def _impl_v10(cls, bb, inputs, attr, params):
        q, scale, zero_point = [*inputs, None][:3]
        zero = 0 if zero_point is None else _constant(zero_point, "DequantizeLinear zero point")
        return relax_ops.call(
            "dqc.dequantize",
            [q],
            scale=float(_constant(scale, "DequantizeLinear scale")),
            zero_point=int(zero),
        )


def _value(bb, expr: relax.Expr) -> relax.Expr | None:
    """The expression behind an input (converters see both bound vars and pending calls)."""
    return bb.lookup_binding(expr) if isinstance(expr, relax.Var) else expr


class _Clip(onnx_frontend.Clip):
    """An integer clip of a ``dqc.quantize`` narrows its grid; any other clip is TVM's."""

    @classmethod
    def _impl_v13(cls, bb, inputs, attr, params):
        x, low, high = [*inputs, None, None][:3]
        quantize = _value(bb, x)
        if relax_ops.is_op(quantize, "dqc.quantize") and low is not None and high is not None:
            a = quantize.attrs
            return relax_ops.call(
                "dqc.quantize",
                list(quantize.args),
                scale=float(a["scale"]),
                zero_point=int(a["zero_point"]),
                qmin=max(int(a["qmin"]), int(_constant(low, "Clip min"))),
                qmax=min(int(a["qmax"]), int(_constant(high, "Clip max"))),
            )
        return super()._impl_v13(bb, inputs, attr, params)


def _unsqueezed(bb, indices: relax.Expr) -> relax.Expr | None:
    """``v`` if ``indices`` is ``v[:, None]`` (``expand_dims(v, 1)``), else None."""
    value = _value(bb, indices)
    if relax_ops.is_op(value, "relax.expand_dims") and [int(a) for a in value.attrs.axis] in (
        [1],
        [-1],
    ):
        return value.args[0]
    return None


class _ScatterND(onnx_frontend.ScatterND):
    @classmethod
    def _impl_v18(cls, bb, inputs, attr, params):
        data, indices, updates = inputs
        rows = _unsqueezed(bb, indices)
        if attr.get("reduction", "none") in ("add", b"add") and rows is not None:
            return relax_ops.call("dqc.index_add", [data, rows, updates])
        return super()._impl_v18(bb, inputs, attr, params)


class _EdgeSoftmax(onnx_frontend.OnnxOpConverter):
    @classmethod
    def _impl_v1(cls, bb, inputs, attr, params):
        codes, dst, indptr, table = inputs
        spec = {
            "scale": float(attr["scale"]),
            "zero_point": int(attr["zero_point"]),
            "qmin": int(attr["qmin"]),
            "qmax": int(attr["qmax"]),
        }
        slope = float(attr["negative_slope"])
        expected = softmax_spec.exp_table(*spec.values(), slope).reshape(-1)
        if not (is_constant(table) and np.array_equal(constant_value(table), expected)):
            raise ValueError("EdgeSoftmax: its exp table does not match its attributes")
        return relax_ops.call(
            "dqc.edge_softmax", [codes, dst, indptr], **spec, negative_slope=slope
        )


CONVERTERS = {
    "QuantizeLinear": _QuantizeLinear,
    "DequantizeLinear": _DequantizeLinear,
    "Clip": _Clip,
    "ScatterND": _ScatterND,
    "EdgeSoftmax": _EdgeSoftmax,
}


@contextlib.contextmanager
def _dqc_converters():
    original = onnx_frontend._get_convert_map
    onnx_frontend._get_convert_map = lambda: {**original(), **CONVERTERS}
    try:
        yield
    finally:
        onnx_frontend._get_convert_map = original


@relax.expr_functor.mutator
class _Canonicalizer(relax.PyExprMutator):
    """Drops no-op reshapes and the negative-index wrap-around of graph indices; constant
    fills become ``full``."""

    def __init__(self, mod: tvm.IRModule, graph_inputs: list[relax.Var]):
        super().__init__(mod)
        self.graph_inputs = graph_inputs
        self.analyzer = Analyzer()

    def _same_shape(self, a, b) -> bool:
        if len(a) != len(b):
            return False
        return all(self.analyzer.can_prove_equal(x, y) for x, y in zip(a, b, strict=True))

    def _graph_index(self, expr: relax.Expr) -> bool:
        return any(expr.same_as(v) for v in self.graph_inputs)

    def visit_var_binding_(self, binding: relax.VarBinding) -> None:
        value = self.visit_expr(binding.value)
        if relax_ops.is_op(value, "relax.reshape"):
            arg = value.args[0]
            if self._same_shape(arg.ty.shape, value.ty.shape):
                self.set_var_remap(binding.var, arg)
                return
        if relax_ops.is_op(value, "relax.broadcast_to") and is_constant(value.args[0]):
            value = self.builder_.normalize(relax.op.full(value.args[1], value.args[0]))
        if relax_ops.is_op(value, "relax.where") and self._graph_index(value.args[2]):
            condition = self.lookup_binding(value.args[0])
            if relax_ops.is_op(condition, "relax.less") and condition.args[0].same_as(
                value.args[2]
            ):
                self.set_var_remap(binding.var, value.args[2])
                return
        self.builder_.emit_normalized(relax.VarBinding(binding.var, value))


def canonicalize(mod: tvm.IRModule) -> tvm.IRModule:
    main_var = mod.get_global_var("main")
    main = mod[main_var]
    graph_inputs = [p for p in main.params if p.name in ("src", "dst")]
    mutator = _Canonicalizer(mod, graph_inputs)
    main = mutator.visit_expr(main)
    mod.update_func(main_var, main)
    return relax.transform.DeadCodeElimination()(mod)


def import_onnx(model: onnx.ModelProto, num_features: int) -> tvm.IRModule:
    """Relax module of an exported model: ``main(x, src, dst, indptr)`` with symbolic N, E and
    the ``dqc.graph_inputs`` attribute, as ``dqc.frontend.export.import_program`` gives."""
    names = [i.name for i in model.graph.input]
    if names != list(INPUTS):
        raise ValueError(f"the model's inputs are {names}; dqc exports have {list(INPUTS)}")
    n, e = tirx.Var("num_nodes", "int64"), tirx.Var("num_edges", "int64")
    shapes = {"x": [n, num_features], "src": [e], "dst": [e], "indptr": [n + 1]}
    with _dqc_converters():
        mod = onnx_frontend.from_onnx(model, shape_dict=shapes, sanitize_input_names=False)
    mod = canonicalize(mod)
    main = mod["main"].with_attr("dqc.graph_inputs", ["src", "dst", "indptr"])
    mod.update_func(mod.get_global_var("main"), main)
    return mod
