"""LowerMessagePassing: gather / per-edge / scatter-add chains become CSR kernels."""

import numpy as np
import pytest
import tvm
from conftest import count_ops, run_relax
from dqc.passes.fold_qdq import FoldQDQ
from dqc.passes.fold_scales import FoldScales
from dqc.passes.lower_message_passing import LowerMessagePassing


@pytest.mark.parametrize(
    ("arch", "scheme"),
    [("gcn", "dq-int8"), ("gin", "dq-int4"), ("gat", "dq-int8"), ("gcn", "fp32")],
)
def test_aggregations_become_spmm_with_identical_results(tiny, arch, scheme):
    mod, inputs, expected = tiny(arch, scheme)
    mod = FoldScales()(FoldQDQ()(mod))
    lowered = LowerMessagePassing()(mod)
    assert count_ops(mod, "dqc.index_add") > 0
    assert count_ops(lowered, "dqc.index_add") == 0
    assert "dqc_spmm_csr" in [gv.name_hint for gv in lowered.get_global_vars()]
    assert count_ops(lowered, "R.take") < count_ops(mod, "R.take")  # gathers fused away
    assert not _same_shape_reshapes(lowered)  # each one would run as a copy kernel
    out = run_relax(lowered, inputs)
    if scheme == "fp32":
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    else:
        np.testing.assert_array_equal(out, expected)


def test_functions_without_graph_inputs_are_left_alone(tiny):
    mod, _, _ = tiny("gcn")
    main = mod["main"].without_attr("dqc.graph_inputs")
    plain = tvm.IRModule({mod.get_global_var("main"): main})
    tvm.ir.assert_structural_equal(LowerMessagePassing()(plain), plain)


def _same_shape_reshapes(mod: tvm.IRModule) -> list:
    """Bindings of ``relax.reshape`` whose result has its input's shape."""
    import tvm_ffi
    from tvm import relax

    found = []
    for func in mod.functions.values():
        if not isinstance(func, relax.Function):
            continue
        for block in func.body.blocks:
            for binding in block.bindings:
                value = binding.value
                if isinstance(value, relax.Call) and value.op.same_as(
                    tvm.ir.Op.get("relax.reshape")
                ):
                    if tvm_ffi.structural_equal(value.args[0].ty.shape, binding.var.ty.shape):
                        found.append(binding.var.name_hint)
    return found
