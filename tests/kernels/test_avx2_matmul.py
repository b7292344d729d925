"""The AVX2 int8 matmul (``vpmaddwd`` on codes widened to int16): exact, chosen for AVX2
targets without VNNI, and ``vpmaddwd`` really is in the generated code."""

import numpy as np
import pytest
import tvm
from conftest import QMATMUL_CASES, assert_qmatmul_exact, qmatmul_module

from dqc.kernels.qmatmul import pack_weights

AVX2 = tvm.target.Target({"kind": "llvm", "mcpu": "znver3"})
HOST_HAS_AVX2 = " avx2" in open("/proc/cpuinfo").read()


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
    weights = np.ones((64, 32), np.int8)
    mod, kernels = qmatmul_module(weights, "uint8", AVX2)
    assert "dqc_qmatmul_avx2" in kernels
    asm = "".join(m.inspect_source("asm") for m in tvm.compile(mod, AVX2).mod.imports)
    assert "vpmaddwd" in asm
    _, kernels = qmatmul_module(weights, "uint8", {"kind": "llvm", "mcpu": "x86-64"})
    assert "dqc_qmatmul_avx2" not in kernels


@pytest.mark.skipif(not HOST_HAS_AVX2, reason="this CPU has no AVX2 to run it on")
@pytest.mark.parametrize("case", QMATMUL_CASES)
def test_avx2_matmul_is_exact(case):
    """Extreme codes too: the int16 products never saturate."""
    assert_qmatmul_exact(case, AVX2, "dqc_qmatmul_avx2")
