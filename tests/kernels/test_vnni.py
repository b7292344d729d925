"""The x86 VNNI int8 matmul: exact, and ``vpdpbusd`` really is in the generated code."""

import numpy as np
import pytest
import tvm
from conftest import QMATMUL_CASES, assert_qmatmul_exact, qmatmul_module

from dqc.kernels.qmatmul import pack_weights

VNNI = tvm.target.Target({"kind": "llvm", "mcpu": "cascadelake"})
HOST_HAS_VNNI = "avx512_vnni" in open("/proc/cpuinfo").read()


def test_packing_puts_a_row_sum_column_after_the_weights():
    b = np.arange(-6, 6, dtype=np.int8).reshape(3, 4)
    packed, blocks = pack_weights(b, lanes=16)
    assert blocks == 1 and packed.size == 1 * 1 * 64  # K 3 -> one group of 4, N 4 -> one block
    layout = packed.reshape(1, 1, 16, 4)  # [block, group, column, k]
    np.testing.assert_array_equal(layout[0, 0, :4, :3], b.T)
    assert layout[0, 0, 4, :3].tolist() == [1, 1, 1] and not layout[0, 0, 5:].any()


def test_vpdpbusd_in_the_assembly():
    mod, _ = qmatmul_module(np.ones((64, 32), np.int8), "uint8", VNNI)
    executable = tvm.compile(mod, VNNI)
    asm = "".join(m.inspect_source("asm") for m in executable.mod.imports)
    assert "vpdpbusd" in asm


@pytest.mark.skipif(not HOST_HAS_VNNI, reason="this CPU has no AVX-512 VNNI to run it on")
@pytest.mark.parametrize("case", QMATMUL_CASES)
def test_vnni_matmul_is_exact(case):
    assert_qmatmul_exact(case, VNNI, "dqc_qmatmul_vnni")
