"""The AVX2 int8 matmul (``vpmaddwd`` on codes widened to int16): exact, chosen for AVX2
targets without VNNI, and ``vpmaddwd`` really is in the generated code."""

import numpy as np
import pytest
import tvm
from dqc.passes.legalize import DQC_LEGALIZE_MAP
from tvm import relax, tirx

from dqc import relax_ops
from dqc._tvm import tensor
from dqc.kernels.qmatmul import pack_weights

AVX2 = tvm.target.Target({"kind": "llvm", "mcpu": "znver3"})
HOST_HAS_AVX2 = " avx2" in open("/proc/cpuinfo").read()


def _build(k: int, n: int, dtype: str, weights: np.ndarray, target=AVX2):
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType([tirx.Var("m", "int64"), k], dtype))
    with bb.function("main", [x]):
        with bb.dataflow():
            call = relax_ops.call("dqc.qmatmul", [x, relax.const(weights)], a_zero=5, b_zero=-3)
            out = bb.emit_output(bb.emit(call))
        bb.emit_func_output(out)
    with target:
        mod = relax.transform.LegalizeOps(customize_legalize_map=DQC_LEGALIZE_MAP)(bb.get())
    return mod, tvm.compile(mod, target)


def _kernels(mod) -> list[str]:
    return [gv.name_hint for gv in mod.get_global_vars()]


def test_int16_packing_pairs_the_reduction_axis():
    b = np.arange(-6, 6, dtype=np.int8).reshape(3, 4)
    packed, blocks = pack_weights(b, lanes=8, per_word=2)
    assert packed.dtype == np.int16 and blocks == 1 and packed.size == 2 * 8 * 2
    layout = packed.reshape(1, 2, 8, 2)  # [block, group, column, pair]
    np.testing.assert_array_equal(layout[0, 0, :4], b[:2].T)
    np.testing.assert_array_equal(layout[0, 1, :4, 0], b[2])
    assert not layout[0, 1, :, 1].any()  # K 3 padded to 4 with zeros
    assert layout[0, :, 4].reshape(-1)[:3].tolist() == [1, 1, 1]  # the row-sum column


def test_vpmaddwd_in_the_assembly_and_not_without_avx2():
    mod, executable = _build(64, 32, "uint8", np.ones((64, 32), np.int8))
    assert "dqc_qmatmul_avx2" in _kernels(mod)
    asm = "".join(m.inspect_source("asm") for m in executable.mod.imports)
    assert "vpmaddwd" in asm
    plain = tvm.target.Target({"kind": "llvm", "mcpu": "x86-64"})
    mod, _ = _build(64, 32, "uint8", np.ones((64, 32), np.int8), plain)
    assert "dqc_qmatmul_avx2" not in _kernels(mod)


@pytest.mark.skipif(not HOST_HAS_AVX2, reason="this CPU has no AVX2 to run it on")
@pytest.mark.parametrize(
    ("dtype", "k", "n", "density"),
    [
        ("int8", 1433, 64, 1.0),
        ("uint8", 70, 41, 1.0),
        ("int8", 3, 7, 1.0),
        ("uint8", 1433, 64, 0.02),
    ],
)
def test_avx2_matmul_is_exact(dtype, k, n, density):
    """Extreme codes (no int16 saturation), dense and sparse rows, odd K and N."""
    rng = np.random.default_rng(0)
    low, high = (-128, 128) if dtype == "int8" else (0, 256)
    a = rng.integers(low, high, (37, k)) * (rng.random((37, k)) < density)
    a[5] = 0  # a row of zeros only
    a[6] = high - 1  # a row of the largest code
    a = a.astype(dtype)
    w = rng.integers(-128, 128, (k, n)).astype(np.int8)
    w[:, 0] = -128
    mod, executable = _build(k, n, dtype, w)
    assert "dqc_qmatmul_avx2" in _kernels(mod)
    out = relax.VirtualMachine(executable, tvm.cpu())["main"](tensor(a)).numpy()
    np.testing.assert_array_equal(out, (a.astype(np.int64) - 5) @ (w.astype(np.int64) + 3))
