"""PackInt4Weights: integer weight constants whose values all fit 4 bits are stored two per
byte.

INT4 models' weights reach the kernels as int8 constants (the dot-product kernels' packed
layouts included; int16 ones for the AVX2 matmul). This pass replaces each such constant
argument of a ``call_tir`` by ``call_tir(dqc_unpack_int4, packed)``: the binary holds half a
byte per weight, and a small kernel unpacks them at each call (layout:
``dqc.kernels.pack_int4``). It runs after the last ``FoldConstant``, which would fold the
unpacking straight back into a constant.
"""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax

from dqc._tvm import constant_value, is_constant
from dqc.kernels import pack_int4

MIN_ELEMENTS = 64  # smaller constants are not worth a kernel call


def _packable(expr: relax.Expr) -> bool:
    if not is_constant(expr) or str(expr.ty.dtype) not in ("int8", "uint8", "int16"):
        return False
    value = constant_value(expr)
    return value.size >= MIN_ELEMENTS and pack_int4.fits_int4(
        str(value.dtype), int(value.min()), int(value.max())
    )


@relax.expr_functor.mutator
class _Packer(relax.PyExprMutator):
    def visit_call_(self, call: relax.Call) -> relax.Expr:
        call = super().visit_call_(call)
        if call.op != tvm.ir.Op.get("relax.call_tir"):
            return call
        args = list(call.args[1].fields)
        if not any(_packable(a) for a in args):
            return call
        args = [self.unpacked(a) if _packable(a) else a for a in args]
        return relax.Call(call.op, [call.args[0], relax.Tuple(args), *call.args[2:]],
                          call.attrs, call.ty_args)  # fmt: skip

    def unpacked(self, constant: relax.Expr) -> relax.Expr:
        value = constant_value(constant)
        rows = value.reshape(1, -1)
        storage = "uint8" if value.dtype == np.uint8 else "int8"  # int16: signed nibbles
        packed = relax.const(pack_int4.pack_array(rows.astype(storage)))
        codes = self.builder_.emit_te(
            pack_int4.unpack,
            packed,
            rows.shape[1],
            str(value.dtype),
            primfunc_name_hint="dqc_unpack_int4",
        )
        return self.builder_.emit(relax.op.reshape(codes, value.shape))


@tvm.transform.module_pass(opt_level=0, name="PackInt4Weights")
class PackInt4Weights:
    """Store 4-bit weight constants two per byte (see the module docstring)."""

    def transform_module(self, mod: tvm.IRModule, ctx) -> tvm.IRModule:
        packer = _Packer(mod)
        for gvar, func in mod.functions.items():
            if isinstance(func, relax.Function):
                packer.builder_.update_func(gvar, packer.visit_expr(func))
        return packer.builder_.get()
