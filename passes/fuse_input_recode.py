"""FuseInputRecode: the kernel that quantizes ``x`` writes the codes as the first matmul reads
them.

After legalization a model whose first op is a dot-product matmul (VNNI, sdot, AVX2) reads
``x`` through two kernels: ``dqc_quantize_checked`` (float -> int8 codes, NaN / Inf flags)
and the matmul's input recode (``qmatmul.recode_padded``: shifted to the instruction's
operand type, zero-padded to whole words). The recode is a second pass over the codes (on the
Reddit-shaped graph, 30 MB read and written again: 2.3 ms of an INT8 inference). This pass
rebuilds the quantize kernel with the recode inside (``quantize_checked(..., recode=...)``)
and drops the recode, when the recode is the codes' only reader. Both kernels describe
themselves in attributes (``dqc.quantize_checked``, ``dqc.recode``), so nothing is parsed
out of TIR. Runs after ``LegalizeOps``, before operator fusion.
"""

from __future__ import annotations

import tvm
from dqc.passes.legalize import RECODE_ATTR
from tvm import relax

from dqc.kernels import add_kernel
from dqc.kernels.quantize import CHECKED_ATTR, quantize_checked
from dqc.relax_bindings import bindings_and_uses, kernel_attr


@relax.expr_functor.mutator
class _Fuser(relax.PyExprMutator):
    def __init__(self, mod: tvm.IRModule):
        super().__init__(mod)
        self.mod = mod
        self.fused: dict = {}  # quantize's var -> (codes var, recode var, recode attribute)

    def find(self, func: relax.Function) -> None:
        """The (quantize, codes, recode) binding triples of ``func`` this pass fuses."""
        bindings, uses = bindings_and_uses(func)
        for recode_var, value in bindings.items():
            recode = kernel_attr(self.mod, value, RECODE_ATTR)
            if recode is None:
                continue
            codes = value.args[1].fields[0]
            item = bindings.get(codes)
            if not isinstance(item, relax.TupleGetItem) or item.index != 0 or uses[codes] != 1:
                continue
            both = item.tuple_value
            if kernel_attr(self.mod, bindings.get(both), CHECKED_ATTR) is not None:
                self.fused[both] = (codes, recode_var, recode)

    def visit_var_binding_(self, binding: relax.VarBinding) -> None:
        var = binding.var
        if var in self.fused:
            _, recode_var, recode = self.fused[var]
            call = binding.value
            arguments = kernel_attr(self.mod, call, CHECKED_ATTR)
            kernel = quantize_checked(
                int(arguments["features"]),
                float(arguments["scale"]),
                int(arguments["zero_point"]),
                int(arguments["qmin"]),
                int(arguments["qmax"]),
                str(arguments["dtype"]),
                recode,
            )
            gv = add_kernel(self.builder_, kernel, f"dqc_quantize_checked_to{recode['dtype']}")
            flags_ty = call.ty.fields[1]
            both = self.builder_.emit(
                relax.call_tir(gv, list(call.args[1].fields), [recode_var.ty, flags_ty]),
                var.name,
            )
            self.set_var_remap(var, both)
            self.set_var_remap(recode_var, self.builder_.emit(relax.TupleGetItem(both, 0)))
            return
        if any(var.same_as(codes) or var.same_as(r) for codes, r, _ in self.fused.values()):
            return  # the codes and the recode: replaced by the fused kernel's output
        super().visit_var_binding_(binding)


@tvm.transform.module_pass(opt_level=0, name="FuseInputRecode")
class FuseInputRecode:
    """Fold a dot-product matmul's input recode into ``dqc_quantize_checked`` (see above)."""

    def transform_module(self, mod: tvm.IRModule, ctx) -> tvm.IRModule:
        fuser = _Fuser(mod)
        for gvar, func in mod.functions.items():
            if isinstance(func, relax.Function):
                fuser.fused = {}
                fuser.find(func)
                if fuser.fused:
                    fuser.builder_.update_func(gvar, fuser.visit_expr(func))
        return relax.transform.DeadCodeElimination()(fuser.builder_.get())
