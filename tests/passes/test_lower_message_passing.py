"""LowerMessagePassing: gather / per-edge / scatter-add chains become CSR kernels."""

import numpy as np
import pytest
import tvm
from conftest import count_ops, run_relax
from dqc.passes.fold_qdq import FoldQDQ
from dqc.passes.fold_scales import FoldScales
from dqc.passes.lower_message_passing import ELEMENTWISE, LowerMessagePassing

from dqc.kernels.spmm_lookup import lookup_supported
from dqc.targets import host_target


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
    assert not _edge_reshapes(lowered)  # per-edge weights are read as the 1-D tensor they are
    out = run_relax(lowered, inputs)
    if scheme == "fp32":
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    else:
        np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("scheme", ["dq-int8", "fp32"])
def test_what_follows_an_aggregation_goes_into_its_kernel(tiny, scheme):
    """GCN's requantize, bias and ReLU after each aggregation become the kernel's epilogue:
    no elementwise op reads an aggregation's sums, and the results stay the same."""
    mod, inputs, expected = tiny("gcn", scheme)
    lowered = LowerMessagePassing()(FoldScales()(FoldQDQ()(mod)))
    readers = _aggregation_readers(lowered)
    assert readers and not readers & ELEMENTWISE
    out = run_relax(lowered, inputs)
    if scheme == "fp32":
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    else:
        np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize(
    ("arch", "scheme", "table_size", "computing_cpu"),
    [
        ("gcn", "dq-int8", 256 * 256, "cascadelake"),
        ("gcn", "dq-int4", 256 * 64, "sandybridge"),
        ("gin", "dq-int8", 256, "cascadelake"),
        ("gin", "dq-int4", 64, "sandybridge"),
    ],
)
def test_messages_are_looked_up_where_bytes_permute(tiny, arch, scheme, table_size, computing_cpu):
    """With AVX-512 VBMI the aggregations read their messages from a table (an extra
    argument): GCN's, a function of the edge's code and the source's, from one row per edge
    code; GIN's, the source's code requantized, from a single row. INT4's rows hold 16
    nibble entries four times over and need only a byte shuffle. On CPUs without them
    (Cascade Lake for INT8, AVX's Sandy Bridge for INT4) the kernels compute the messages.
    Both give the module's results bit for bit."""
    mod, inputs, expected = tiny(arch, scheme)
    mod = FoldScales()(FoldQDQ()(mod))
    lowered = {}
    for mcpu in ("icelake-server", computing_cpu):
        target = tvm.target.Target({"kind": "llvm", "mcpu": mcpu})
        with target:
            lowered[mcpu] = (LowerMessagePassing()(mod), target)
    assert _table_kernels(lowered["icelake-server"][0], table_size) == 2  # one per layer
    assert _table_kernels(lowered[computing_cpu][0], table_size) == 0
    runnable = lookup_supported(tvm.target.Target(host_target()))
    for mcpu, (module, target) in lowered.items():
        if runnable or mcpu == computing_cpu:
            np.testing.assert_array_equal(run_relax(module, inputs, target=target), expected)


def _table_kernels(mod: tvm.IRModule, size: int) -> int:
    """The CSR kernels of ``mod`` that take a message table (int8, ``size`` entries)."""

    def is_table(param) -> bool:
        return str(param.dtype) == "int8" and [str(d) for d in param.shape] == [str(size)]

    return sum(
        any(is_table(param) for param in func.params)
        for gv, func in mod.functions.items()
        if gv.name_hint.startswith("dqc_spmm_csr")
    )


def _aggregation_readers(mod: tvm.IRModule) -> set[str]:
    """The ops that read the output of a CSR kernel of ``mod``'s ``main``."""
    from tvm import relax

    bindings = [b for block in mod["main"].body.blocks for b in block.bindings]
    sums = {
        b.var
        for b in bindings
        if isinstance(b.value, relax.Call)
        and isinstance(b.value.args[0], tvm.ir.GlobalVar)
        and b.value.args[0].name_hint.startswith("dqc_spmm_csr")
    }
    return {
        b.value.op.name
        for b in bindings
        if isinstance(b.value, relax.Call)
        and isinstance(b.value.op, tvm.ir.Op)
        and sums & set(relax.analysis.free_vars(b.value))
    }


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
                        found.append(binding.var.name)
    return found


def _edge_reshapes(mod: tvm.IRModule) -> list:
    """Bindings of ``relax.reshape`` of a per-edge tensor (as many rows as ``src``)."""
    import tvm_ffi
    from tvm import relax

    found = []
    for func in mod.functions.values():
        if not isinstance(func, relax.Function) or "dqc.graph_inputs" not in func.attrs:
            continue
        src = {p.name: p for p in func.params}[str(func.attrs["dqc.graph_inputs"][0])]
        for block in func.body.blocks:
            for binding in block.bindings:
                value = binding.value
                if isinstance(value, relax.Call) and value.op.same_as(
                    tvm.ir.Op.get("relax.reshape")
                ):
                    rows = value.args[0].ty.shape[0]
                    if tvm_ffi.structural_equal(rows, src.ty.shape[0]):
                        found.append(binding.var.name)
    return found
