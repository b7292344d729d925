"""The x86 VNNI int8 matmul: exact, and ``vpdpbusd`` really is in the generated code."""

import numpy as np
import pytest
import tvm
from dqc.passes.legalize import DQC_LEGALIZE_MAP
from tvm import relax, tirx

from dqc import relax_ops
from dqc._tvm import tensor
from dqc.kernels.qmatmul import pack_weights

VNNI = tvm.target.Target({"kind": "llvm", "mcpu": "cascadelake"})
HOST_HAS_VNNI = "avx512_vnni" in open("/proc/cpuinfo").read()


def _build(k: int, n: int, dtype: str, weights: np.ndarray):
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType([tirx.Var("m", "int64"), k], dtype))
    with bb.function("main", [x]):
        with bb.dataflow():
            call = relax_ops.call("dqc.qmatmul", [x, relax.const(weights)], a_zero=5, b_zero=-3)
            out = bb.emit_output(bb.emit(call))
        bb.emit_func_output(out)
    with VNNI:
        mod = relax.transform.LegalizeOps(customize_legalize_map=DQC_LEGALIZE_MAP)(bb.get())
    return mod, tvm.compile(mod, VNNI)


def test_packing_puts_a_row_sum_column_after_the_weights():
    b = np.arange(-6, 6, dtype=np.int8).reshape(3, 4)
    packed, blocks = pack_weights(b, lanes=16)
    assert blocks == 1 and packed.size == 1 * 1 * 64  # K 3 -> one group of 4, N 4 -> one block
    layout = packed.reshape(1, 1, 16, 4)  # [block, group, column, k]
    np.testing.assert_array_equal(layout[0, 0, :4, :3], b.T)
    assert layout[0, 0, 4, :3].tolist() == [1, 1, 1] and not layout[0, 0, 5:].any()


def test_vpdpbusd_in_the_assembly():
    _, executable = _build(64, 32, "uint8", np.ones((64, 32), np.int8))
    asm = "".join(m.inspect_source("asm") for m in executable.mod.imports)
    assert "vpdpbusd" in asm


@pytest.mark.skipif(not HOST_HAS_VNNI, reason="this CPU has no AVX-512 VNNI to run it on")
@pytest.mark.parametrize(
    ("dtype", "k", "n", "density"),
    [
        ("int8", 1433, 64, 1.0),
        ("uint8", 70, 41, 1.0),
        ("int8", 3, 7, 1.0),
        ("uint8", 1433, 64, 0.02),
    ],
)
def test_vnni_matmul_is_exact(dtype, k, n, density):
    """Dense rows, and sparse ones (bag-of-words) whose zero byte groups the kernel skips."""
    rng = np.random.default_rng(0)
    low, high = (-128, 128) if dtype == "int8" else (0, 256)
    a = rng.integers(low, high, (37, k)) * (rng.random((37, k)) < density)
    a[5] = 0  # a row of zeros only
    a = a.astype(dtype)
    w = rng.integers(-128, 128, (k, n)).astype(np.int8)
    mod, executable = _build(k, n, dtype, w)
    assert "dqc_qmatmul_vnni" in [gv.name_hint for gv in mod.get_global_vars()]
    out = relax.VirtualMachine(executable, tvm.cpu())["main"](tensor(a)).numpy()
    np.testing.assert_array_equal(out, (a.astype(np.int64) - 5) @ (w.astype(np.int64) + 3))
