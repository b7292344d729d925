"""FuseInputMatmul: on AMX, the first matmul quantizes ``x`` itself, tile by tile.

After ``FuseInputRecode`` an INT8 model whose first op is a matmul reads ``x`` through
``dqc_quantize_checked`` (float -> the matmul's uint8 operands, NaN / Inf flags) and then the
matmul. Where that matmul is the AMX kernel, which multiplies 16 rows at a time out of a
stack buffer anyway, this pass replaces both with one kernel that quantizes each tile's rows
into that buffer (``qmatmul_amx(..., quantize=...)``): the codes are never written out and
read back (Reddit-shaped: 30 MB each way, ~10 ms on 2 cores). It fuses only when the codes
are read by that matmul alone. Both kernels describe themselves in attributes
(``dqc.quantize_checked``, ``dqc.qmatmul_amx``). Runs after ``FuseInputRecode``.
"""

from __future__ import annotations

import tvm
from tvm import relax

from dqc.kernels import add_kernel
from dqc.kernels.qmatmul_amx import AMX_ATTR, qmatmul_amx
from dqc.kernels.quantize import CHECKED_ATTR
from dqc.relax_bindings import bindings_and_uses, kernel_attr


@relax.expr_functor.mutator
class _Fuser(relax.PyExprMutator):
    def __init__(self, mod: tvm.IRModule):
        super().__init__(mod)
        self.mod = mod
        self.fused: dict = {}  # quantize's var -> (codes var, matmul var, matmul call)
        self.outputs: dict = {}  # matmul var -> the fused call's var

    def find(self, func: relax.Function) -> None:
        """The (quantize, codes, matmul) bindings of ``func`` this pass fuses."""
        bindings, uses = bindings_and_uses(func)
        for matmul_var, value in bindings.items():
            shape = kernel_attr(self.mod, value, AMX_ATTR)
            if shape is None:
                continue
            codes = value.args[1].fields[0]
            item = bindings.get(codes)
            if not isinstance(item, relax.TupleGetItem) or item.index != 0 or uses[codes] != 1:
                continue
            both = item.tuple_value
            quantize = kernel_attr(self.mod, bindings.get(both), CHECKED_ATTR)
            recode = None if quantize is None else quantize.get("recode")
            if recode is not None and int(recode["width"]) == 4 * int(shape["groups"]):
                self.fused[both] = (codes, matmul_var, value)

    def visit_var_binding_(self, binding: relax.VarBinding) -> None:
        var = binding.var
        if var in self.fused:
            _, matmul_var, matmul = self.fused[var]
            quantize = kernel_attr(self.mod, binding.value, CHECKED_ATTR)
            shape = kernel_attr(self.mod, matmul, AMX_ATTR)
            kernel = qmatmul_amx(int(shape["groups"]), int(shape["blocks"]), quantize)
            gv = add_kernel(self.builder_, kernel, "dqc_quantize_qmatmul_amx")
            x = binding.value.args[1].fields[0]
            weights = matmul.args[1].fields[1]
            out_ty = [matmul_var.ty, binding.value.ty.fields[1]]
            fused = self.builder_.emit(relax.call_tir(gv, [x, weights], out_ty), var.name)
            self.set_var_remap(var, fused)  # its flags output: field 1 of both
            self.outputs[matmul_var] = fused
            return
        if var in self.outputs:
            self.set_var_remap(var, self.builder_.emit(relax.TupleGetItem(self.outputs[var], 0)))
            return
        if any(var.same_as(codes) for codes, _, _ in self.fused.values()):
            return  # the codes: never written now
        super().visit_var_binding_(binding)


@tvm.transform.module_pass(opt_level=0, name="FuseInputMatmul")
class FuseInputMatmul:
    """Fold ``dqc_quantize_checked`` into the AMX matmul that alone reads its codes."""

    def transform_module(self, mod: tvm.IRModule, ctx) -> tvm.IRModule:
        fuser = _Fuser(mod)
        for gvar, func in mod.functions.items():
            if isinstance(func, relax.Function):
                fuser.fused, fuser.outputs = {}, {}
                fuser.find(func)
                if fuser.fused:
                    fuser.builder_.update_func(gvar, fuser.visit_expr(func))
        return relax.transform.DeadCodeElimination()(fuser.builder_.get())
