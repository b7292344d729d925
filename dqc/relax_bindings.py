"""Reading a Relax function's bindings: what passes that rewrite a chain of kernels ask."""

from __future__ import annotations

import tvm
from tvm import relax


def bindings_and_uses(func: relax.Function) -> tuple[dict, dict]:
    """``func``'s bindings (var -> bound value) and how many expressions read each var (the
    bound values and the function's result)."""
    bindings = {b.var: b.value for block in func.body.blocks for b in block.bindings}
    uses: dict = {}
    for value in [*bindings.values(), func.body.body]:
        for var in relax.analysis.free_vars(value):
            uses[var] = uses.get(var, 0) + 1
    return bindings, uses


def kernel_attr(mod: tvm.IRModule, value, attr: str):
    """``attr`` of the PrimFunc that ``value`` (a binding's value) calls through ``call_tir``;
    ``None`` when it calls none, or one without ``attr``."""
    if not isinstance(value, relax.Call) or value.op != tvm.ir.Op.get("relax.call_tir"):
        return None
    func = mod[value.args[0]]
    return func.attrs[attr] if func.attrs and attr in func.attrs else None
