"""FoldScales: real requantize multipliers and biases -> int32 multipliers, one shift, int64 bias.

``FoldQDQ`` leaves each ``dqc.requantize`` with ``real_multipliers`` (ratios of scales) and a
float bias in output units; this pass computes their fixed-point form once, at compile time,
with ``dqc.fixed_point.FixedPoint`` (the same function the NumPy reference uses)::

    requantize(t, real_multipliers=[0.0123], bias=[0.4, -1.2])
    ==> requantize(t, multipliers=[13207709], shift=30, bias=int64[429496730, -1288490189])

A per-channel multiplier (a list) becomes a list of integers with the same shared shift.
"""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax

from dqc import relax_ops
from dqc._tvm import constant_value
from dqc.fixed_point import FixedPoint


@relax.expr_functor.mutator
class _Folder(relax.PyExprMutator):
    def __init__(self, mod: tvm.IRModule):
        super().__init__(mod)
        self.mod = mod

    def run(self) -> tvm.IRModule:
        for gvar, func in self.mod.functions.items():
            if isinstance(func, relax.Function):
                self.builder_.update_func(gvar, self.builder_.normalize(self.visit_expr(func)))
        return self.builder_.get()

    def visit_call_(self, call: relax.Call) -> relax.Expr:
        call = super().visit_call_(call)
        if not relax_ops.is_op(call, "dqc.requantize") or "real_multipliers" not in call.attrs:
            return call
        a = dict(call.attrs.items())
        count = len(a["zero_points"])
        terms, rest = list(call.args[:count]), list(call.args[count:])
        bias = constant_value(rest[0]).astype(np.float64) if rest else None
        reals = [_real(m) for m in a.pop("real_multipliers")]
        fixed = FixedPoint.from_reals(reals, float(np.abs(bias).max()) if rest else 0.0)
        args = terms + ([relax.const(fixed.bias(bias), "int64")] if rest else [])
        multipliers = [m.tolist() if np.ndim(m) else m for m in fixed.multipliers]
        return relax_ops.call(
            "dqc.requantize", args, **a, multipliers=multipliers, shift=fixed.shift
        )


def _real(attr) -> float | np.ndarray:
    """A real multiplier attribute: a float, or a list of per-channel floats."""
    if isinstance(attr, tvm.ir.Array | list | tuple):
        return np.array([float(v) for v in attr], np.float64)
    return float(attr)


@tvm.transform.module_pass(opt_level=0, name="FoldScales")
class FoldScales:
    """Fixed-point multipliers and biases for every ``dqc.requantize``."""

    def transform_module(self, mod: tvm.IRModule, ctx) -> tvm.IRModule:
        return _Folder(mod).run()
