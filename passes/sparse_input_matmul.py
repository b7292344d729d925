"""SparseInputMatmul: a model whose input is sparse multiplies it without writing its codes.

``CheckFiniteInput`` leaves the input quantized by ``dqc_quantize_checked`` (codes and NaN /
Inf flags). When those codes feed only the first layer's ``dqc.qmatmul`` with constant
weights (GCN, GAT: ``x`` goes through a linear first), this pass replaces both by
``dqc.kernels.sparse_input_matmul``, which reads ``x`` once and multiplies only its nonzero
values by the same int8 weights. The int32 sums and the flags are the same values, so
nothing after them changes. Models whose codes have other
readers (GIN aggregates ``x`` first) are left alone.

It pays only for sparse inputs (the compiler decides: ``dqc.compiler.sparse_input``). Runs
after ``AddGraphPrep`` and ``FoldConstant`` (the weights are constants), before
``LegalizeOps``.
"""

from __future__ import annotations

import tvm
from tvm import relax

from dqc import relax_ops
from dqc._tvm import is_constant
from dqc.kernels import add_kernel
from dqc.kernels.quantize import CHECKED_ATTR
from dqc.kernels.sparse_input_matmul import sparse_input_qmatmul
from dqc.relax_bindings import bindings_and_uses, kernel_attr


@relax.expr_functor.mutator
class _Rewriter(relax.PyExprMutator):
    def __init__(self, mod: tvm.IRModule):
        super().__init__(mod)
        self.mod = mod
        self.found: dict = {}  # quantize_checked's var -> (its codes var, the qmatmul binding)
        self.replaced: dict = {}  # the qmatmul's var -> the sparse kernel's output tuple
        self.dropped: set = set()  # the codes vars, read by nothing now

    def find(self, func: relax.Function) -> None:
        bindings, uses = bindings_and_uses(func)
        for var, value in bindings.items():
            if not relax_ops.is_op(value, "dqc.qmatmul") or not is_constant(value.args[1]):
                continue
            codes = value.args[0]
            item = bindings.get(codes)
            if not isinstance(item, relax.TupleGetItem) or item.index != 0 or uses[codes] != 1:
                continue
            arguments = kernel_attr(self.mod, bindings.get(item.tuple_value), CHECKED_ATTR)
            if arguments is None or int(arguments["zero_point"]) != int(value.attrs["a_zero"]):
                continue
            self.found[item.tuple_value] = (codes, relax.VarBinding(var, value))

    def visit_var_binding_(self, binding: relax.VarBinding) -> None:
        var = binding.var
        if var in self.found:
            codes, matmul = self.found[var]
            both = self._emit_kernel(binding.value, matmul.value)
            self.set_var_remap(var, both)  # the flags stay item 1 of the new tuple
            self.replaced[matmul.var] = both
            self.dropped.add(codes)
        elif var in self.replaced:
            sums = relax.TupleGetItem(self.replaced[var], 0)
            self.builder_.emit_normalized(relax.VarBinding(var, sums))
        elif var not in self.dropped:
            super().visit_var_binding_(binding)

    def _emit_kernel(self, checked: relax.Call, matmul: relax.Call) -> relax.Var:
        """Emits the sparse kernel computing ``matmul`` on the input ``checked`` quantizes."""
        arguments = kernel_attr(self.mod, checked, CHECKED_ATTR)
        weights = matmul.args[1]
        kernel = sparse_input_qmatmul(
            int(arguments["features"]),
            int(weights.ty.shape[1]),
            float(arguments["scale"]),
            int(arguments["zero_point"]),
            int(arguments["qmin"]),
            int(arguments["qmax"]),
            str(arguments["dtype"]),
            int(matmul.attrs["a_zero"]),
            int(matmul.attrs["b_zero"]),
        )
        gv = add_kernel(self.builder_, kernel, "dqc_sparse_input_qmatmul")
        return self.builder_.emit(
            relax.call_tir(
                gv,
                [checked.args[1].fields[0], weights],
                [matmul.ty, checked.ty.fields[1]],
            ),
            "sparse_input",
        )


@tvm.transform.module_pass(opt_level=0, name="SparseInputMatmul")
class SparseInputMatmul:
    """Quantize and multiply a sparse input in one kernel (module docstring)."""

    def transform_module(self, mod: tvm.IRModule, ctx) -> tvm.IRModule:
        rewriter, changed = _Rewriter(mod), False
        for gvar, func in mod.functions.items():
            if isinstance(func, relax.Function):
                rewriter.found, rewriter.replaced, rewriter.dropped = {}, {}, set()
                rewriter.find(func)
                if rewriter.found:
                    rewriter.builder_.update_func(gvar, rewriter.visit_expr(func))
                    changed = True
        if not changed:
            return mod
        return relax.transform.DeadCodeElimination()(rewriter.builder_.get())
