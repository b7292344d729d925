"""dqc's Relax operators, registered from Python (no C++): the vocabulary of its IR.

Float-facing (what the importer emits from the exported torch program):

* ``dqc.quantize(x)``: floats to integer codes, ``clamp(round(x / scale + zero_point))`` in
  float32, rounded by ``dqc.qparams.round_to_code`` (DQ's arithmetic, ties to the even code;
  Relax's own ``quantize`` rounds before adding the zero point, which differs at ties). int8
  codes for signed grids, uint8 for unsigned ones; INT4 uses the same dtypes with a narrower
  ``[qmin, qmax]``.
* ``dqc.dequantize(q)``: ``(q - zero_point) * scale`` in float32.
* ``dqc.index_add(base, index, src)``: ``base`` with ``src[e]`` added to row ``index[e]``.
* ``dqc.edge_softmax(alpha, dst, indptr)``: GAT's attention softmax over each target's
  in-edges, in integers: Q15 weights from an exp table of the alpha codes
  (see ``dqc.edge_softmax``); ``dqc.edge_softmax_float`` is the float one of FP32 models.
* ``dqc.segment_mean(x, graph_ptr)``: the mean of each graph's node rows; on int32 codes
  (after ``FoldQDQ``) it is ``dqc.pooling.mean_fixed``, with ``FRAC_BITS`` fractional bits.
* ``dqc.segment_sum(x, graph_ptr)``: the sum of each graph's node rows (add pooling).

Integer (what the passes produce):

* ``dqc.qmatmul(a, b)``: ``sum_k (a[m, k] - a_zero) * (b[k, n] - b_zero)`` in int32.
* ``dqc.requantize(t_0, ..., t_k[, bias])``: ``clamp(round(zero_point + sum_i
  M_i * (t_i - z_i) + bias))``, real multipliers ``M_i``, rounded as ``quantize`` rounds;
  ``FoldScales`` turns them into integer multipliers and one shift (``dqc.fixed_point``), and
  only then can it be lowered.

Attributes are ``DictAttrs`` so passes read them as ``call.attrs["scale"]``.
"""

from __future__ import annotations

import tvm
from tvm import relax

OPS = (
    "dqc.quantize",
    "dqc.dequantize",
    "dqc.index_add",
    "dqc.edge_softmax",
    "dqc.edge_softmax_float",
    "dqc.qmatmul",
    "dqc.requantize",
    "dqc.segment_mean",
    "dqc.segment_sum",
)


def code_dtype(qmin: int) -> str:
    """Storage dtype of integer codes on the grid starting at ``qmin``."""
    return "int8" if qmin < 0 else "uint8"


def _tensor(call: relax.Call, index: int) -> relax.TensorType:
    ty = call.args[index].ty
    if not isinstance(ty, relax.TensorType):
        raise TypeError(f"{call.op.name}: argument {index} must be a tensor, got {ty}")
    return ty


def _like(index: int, dtype: str | None):
    def infer(call: relax.Call, ctx) -> relax.TensorType:
        ty = _tensor(call, index)
        return relax.TensorType(ty.shape, dtype or ty.dtype)

    return infer


def _infer_quantize(call, ctx):
    return _like(0, code_dtype(int(call.attrs["qmin"])))(call, ctx)


def _infer_requantize(call, ctx):
    return _like(0, str(call.attrs["out_dtype"]))(call, ctx)


def _infer_qmatmul(call, ctx):
    a, b = _tensor(call, 0), _tensor(call, 1)
    return relax.TensorType([a.shape[0], b.shape[1]], "int32")


def _infer_segment_pool(call, ctx):
    x, ptr = _tensor(call, 0), _tensor(call, 1)
    return relax.TensorType([ptr.shape[0] - 1, x.shape[1]], x.dtype)


_INFER = {
    "dqc.quantize": _infer_quantize,
    "dqc.dequantize": _like(0, "float32"),
    "dqc.index_add": _like(0, None),
    "dqc.edge_softmax": _like(0, "int32"),
    "dqc.edge_softmax_float": _like(0, "float32"),
    "dqc.qmatmul": _infer_qmatmul,
    "dqc.requantize": _infer_requantize,
    "dqc.segment_mean": _infer_segment_pool,
    "dqc.segment_sum": _infer_segment_pool,
}

for _name, _infer in _INFER.items():
    tvm.ir.register_op_attr(_name, "FInferType", _infer)
    tvm.ir.register_op_attr(_name, "FPurity", True)


def make_attrs(**attrs) -> tvm.ir.Attrs:
    return tvm.ir.make_node("ir.DictAttrs", **attrs)


def call(name: str, args: list[relax.Expr], **attrs) -> relax.Call:
    """A call of dqc op ``name`` with ``attrs`` stored as ``DictAttrs``."""
    return relax.Call(tvm.ir.Op.get(name), args, attrs=make_attrs(**attrs))


def is_op(expr: relax.Expr, name: str) -> bool:
    """Whether ``expr`` is a call of the operator ``name`` (dqc's or Relax's own)."""
    return isinstance(expr, relax.Call) and isinstance(expr.op, tvm.ir.Op) and expr.op.name == name
