"""FoldQDQ: turn dequantize -> float ops -> quantize chains into integer ops.

Every float value computed only from dequantized codes by ops that are affine in them is
tracked symbolically as ``sum_i scale_i * (t_i - z_i) + bias`` over integer tensors ``t_i``;
where such a value is quantized, the ``dqc.quantize`` becomes a ``dqc.requantize`` of the
``t_i`` with real multipliers ``scale_i / scale_out`` (``FoldScales`` makes them fixed point).
Dead float ops are then removed. Values needed in float elsewhere (e.g. the logits) keep their
float computation.

Before / after (GCN message)::

    m  = multiply(expand_dims(dequantize(nq)), take(dequantize(hq), src))
    mq = quantize(m)
    ==>
    p  = multiply(expand_dims(astype(nq, int32) - zn), take(astype(hq, int32) - zh, src))
    mq = requantize(p, zero_points=[0], multipliers=[sn * sh / sm])

Integer rules: ``dequantize``; shape ops (take, permute_dims, expand_dims, reshape,
strided_slice) of one term; ``matmul`` of two terms -> ``dqc.qmatmul`` (int32, zero points
folded into the kernel); ``multiply`` of two terms (int32 product) or by a float constant
(a scalar, or one value per channel of the last axis: the term's scale becomes per-channel,
and only ``add`` and a requantize take such terms further); ``add`` of affine values or of
a float constant (the bias, kept real until ``FoldScales``); ``sum`` / ``mean`` of one
term; ``relu`` (``max(q, z)`` on codes, or ``max(requantize(v), z_out)`` when quantized
right after); ``dqc.index_add`` of one term into zeros; ``dqc.segment_mean`` of one term
(mean codes with ``FRAC_BITS`` fractional bits) and ``dqc.segment_sum`` of one term (exact
sums).
Exact in integers except biases and the final rounding, which follow ``dqc.fixed_point``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import tvm
from tvm import relax

from dqc import relax_ops
from dqc._tvm import constant_value, is_constant
from dqc.pooling import FRAC_BITS

SHAPE_OPS = (
    "relax.take",
    "relax.permute_dims",
    "relax.expand_dims",
    "relax.reshape",
    "relax.strided_slice",
)


@dataclass(frozen=True)
class Term:
    """``scale * (tensor - zero)``: ``tensor`` is an integer Relax var of the new function;
    ``scale`` a float, or float64 values per channel of the last axis (after a multiply by a
    per-channel constant, GIN's BatchNorm after a ReLU), which only a requantize takes."""

    tensor: relax.Expr
    zero: int
    scale: float | np.ndarray

    @property
    def per_channel(self) -> bool:
        return np.ndim(self.scale) > 0


@dataclass(frozen=True)
class Affine:
    """``sum(terms) + bias`` (``bias`` broadcast over the last axis), optionally under a ReLU."""

    terms: tuple[Term, ...]
    bias: np.ndarray | None = None
    relu: bool = False

    @property
    def single(self) -> Term | None:
        """The term of a plain ``scale * (t - z)`` value, else None."""
        return (
            self.terms[0] if len(self.terms) == 1 and self.bias is None and not self.relu else None
        )


@relax.expr_functor.mutator
class _Integerizer(relax.PyExprMutator):
    def __init__(self, mod: tvm.IRModule):
        super().__init__(mod)
        self.mod = mod
        self.reps: dict[relax.Var, Affine] = {}

    def run(self) -> tvm.IRModule:
        for gvar, func in self.mod.functions.items():
            if isinstance(func, relax.Function):
                self.builder_.update_func(gvar, self.builder_.normalize(self.visit_expr(func)))
        return self.builder_.get()

    # ---- helpers -------------------------------------------------------------------------
    def emit(self, expr: relax.Expr, name: str = "i") -> relax.Var:
        return self.builder_.emit(expr, name)

    def new(self, var: relax.Expr) -> relax.Expr:
        return self.visit_expr(var)

    def rep(self, expr: relax.Expr) -> Affine | None:
        return self.reps.get(expr) if isinstance(expr, relax.Var) else None

    def const(self, expr: relax.Expr) -> np.ndarray | None:
        """Value of a constant, or of adds/multiplies of constants (e.g. GIN's ``1 + eps``)."""
        if is_constant(expr):
            return constant_value(expr)
        value = self.lookup_binding(expr) if isinstance(expr, relax.Var) else None
        for name, fn in (("relax.add", np.add), ("relax.multiply", np.multiply)):
            if relax_ops.is_op(value, name):
                a, b = (self.const(arg) for arg in value.args)
                if a is not None and b is not None:
                    return fn(a, b)
        return None

    def is_zeros(self, expr: relax.Expr) -> bool:
        value = self.lookup_binding(expr) if isinstance(expr, relax.Var) else expr
        if relax_ops.is_op(value, "relax.zeros"):
            return True
        if relax_ops.is_op(value, "relax.full"):
            fill = self.const(value.args[1])
            return fill is not None and not np.any(fill)
        return False

    def int32(self, term: Term) -> relax.Expr:
        """``tensor - zero`` as int32."""
        tensor = term.tensor
        if tensor.ty.dtype != "int32":
            tensor = self.emit(relax.op.astype(tensor, "int32"))
        if term.zero:
            tensor = self.emit(relax.op.subtract(tensor, relax.const(term.zero, "int32")))
        return tensor

    # ---- rules ---------------------------------------------------------------------------
    def visit_var_binding_(self, binding: relax.VarBinding) -> None:
        value = binding.value
        if relax_ops.is_op(value, "dqc.quantize") and self.rep(value.args[0]) is not None:
            self.set_var_remap(binding.var, self.requantize(self.rep(value.args[0]), value))
            return
        super().visit_var_binding_(binding)
        if isinstance(value, relax.Call) and isinstance(value.op, tvm.ir.Op):
            rep = self.integer_rep(value)
            if rep is not None:
                self.reps[binding.var] = rep

    def integer_rep(self, call: relax.Call) -> Affine | None:
        name, args = call.op.name, call.args
        reps = [self.rep(a) for a in args]
        per_channel = any(r is not None and any(t.per_channel for t in r.terms) for r in reps)
        if per_channel and name not in ("relax.add", "relax.multiply"):
            return None  # computed in float: per-channel scales go only into a requantize
        singles = [r.single if r is not None else None for r in reps]
        if name == "dqc.dequantize":
            a = call.attrs
            return Affine((Term(self.new(args[0]), int(a["zero_point"]), float(a["scale"])),))
        if name in SHAPE_OPS and singles[0] is not None:
            t = singles[0]
            op_args = [self.new(a) for a in args[1:]]
            shaped = relax.Call(call.op, [t.tensor, *op_args], call.attrs, call.ty_args)
            return Affine((replace(t, tensor=self.emit(shaped)),))
        if name == "relax.matmul" and singles[0] is not None and singles[1] is not None:
            a, b = singles
            product = relax_ops.call(
                "dqc.qmatmul", [a.tensor, b.tensor], a_zero=a.zero, b_zero=b.zero
            )

            return Affine((Term(self.emit(product), 0, a.scale * b.scale),))
        if name == "relax.multiply":
            return self.multiply(args, reps, singles)
        if name == "relax.add":
            return self.add(args, reps)
        if name in ("relax.sum", "relax.mean") and singles[0] is not None:
            t = singles[0]
            total = self.emit(relax.op.sum(self.int32(t), call.attrs.axis, call.attrs.keepdims))
            scale = t.scale
            if name == "relax.mean":
                shape = args[0].ty.shape
                scale /= int(np.prod([int(shape[int(ax)]) for ax in call.attrs.axis]))
            return Affine((Term(total, 0, scale),))
        if name == "relax.nn.relu" and reps[0] is not None:
            t = singles[0]
            if t is None:
                return replace(reps[0], relu=True)
            zero = relax.const(t.zero, t.tensor.ty.dtype)
            return Affine((replace(t, tensor=self.emit(relax.op.maximum(t.tensor, zero))),))
        if name in ("dqc.segment_mean", "dqc.segment_sum") and singles[0] is not None:
            t = singles[0]
            pooled = relax_ops.call(name, [self.int32(t), self.new(args[1])])
            scale = t.scale / (1 << FRAC_BITS) if name == "dqc.segment_mean" else t.scale
            return Affine((Term(self.emit(pooled), 0, scale),))
        if name == "dqc.index_add" and singles[2] is not None and self.is_zeros(args[0]):
            t = singles[2]
            zeros = self.emit(relax.op.zeros(args[0].ty.shape, "int32"))
            summed = relax_ops.call("dqc.index_add", [zeros, self.new(args[1]), self.int32(t)])
            return Affine((Term(self.emit(summed), 0, t.scale),))
        return None

    def multiply(self, args, reps, singles) -> Affine | None:
        if singles[0] is not None and singles[1] is not None:
            if singles[0].per_channel or singles[1].per_channel:
                return None
            product = relax.op.multiply(self.int32(singles[0]), self.int32(singles[1]))
            return Affine((Term(self.emit(product), 0, singles[0].scale * singles[1].scale),))
        for rep, other in ((reps[0], args[1]), (reps[1], args[0])):
            factor = self.const(other)
            k = None if factor is None else _channel_factor(factor)
            if rep is not None and not rep.relu and k is not None:
                terms = tuple(replace(t, scale=t.scale * k) for t in rep.terms)
                bias = None if rep.bias is None else rep.bias * k
                return Affine(terms, bias)
        return None

    def add(self, args, reps) -> Affine | None:
        a, b = reps
        if a is not None and b is not None and not (a.relu or b.relu):
            biases = [x.bias for x in (a, b) if x.bias is not None]
            return Affine(a.terms + b.terms, sum(biases) if biases else None)
        for rep, other in ((a, args[1]), (b, args[0])):
            constant = self.const(other)
            if rep is not None and not rep.relu and constant is not None:
                bias = constant.astype(np.float64)
                return Affine(rep.terms, bias if rep.bias is None else rep.bias + bias)
        return None

    def requantize(self, rep: Affine, quantize: relax.Call) -> relax.Var:
        a = quantize.attrs
        scale, zero = float(a["scale"]), int(a["zero_point"])
        qmin, qmax = int(a["qmin"]), int(a["qmax"])
        dtype = relax_ops.code_dtype(qmin)
        inputs = [t.tensor for t in rep.terms]
        if rep.bias is not None:
            inputs.append(relax.const(np.asarray(rep.bias / scale, np.float64), "float64"))
        out = self.emit(
            relax_ops.call(
                "dqc.requantize",
                inputs,
                zero_points=[t.zero for t in rep.terms],
                real_multipliers=[_attr(t.scale / scale) for t in rep.terms],
                zero_point=zero,
                qmin=qmin,
                qmax=qmax,
                out_dtype=dtype,
            ),
            "q",
        )
        if rep.relu:
            out = self.emit(relax.op.maximum(out, relax.const(zero, dtype)), "q")
        return out


def _channel_factor(factor: np.ndarray) -> float | np.ndarray | None:
    """A constant factor as a scale factor: a float, float64 values per channel of the last
    axis (shape ``[C]``, or ``[1, C]``), or None for any other shape."""
    if factor.size == 1:
        return float(factor.reshape(()))
    if factor.ndim and factor.size == factor.shape[-1]:
        return factor.reshape(-1).astype(np.float64)
    return None


def _attr(value: float | np.ndarray) -> float | list[float]:
    """A real multiplier as an attribute: a float, or a list of per-channel floats."""
    return [float(v) for v in value] if np.ndim(value) else value


@tvm.transform.module_pass(opt_level=0, name="FoldQDQ")
class FoldQDQ:
    """Rewrite quantized float chains into integer ops (see the module docstring)."""

    def transform_module(self, mod: tvm.IRModule, ctx) -> tvm.IRModule:
        mod = _Integerizer(mod).run()
        return relax.transform.DeadCodeElimination()(mod)


__all__ = ["FoldQDQ"]
