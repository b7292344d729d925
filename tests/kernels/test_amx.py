"""The x86 AMX int8 matmul: exact on full and partial row tiles, and ``tdpbusd`` really is in
the generated code."""

import numpy as np
import pytest
import tvm
from conftest import QMATMUL_CASES, assert_qmatmul_exact, qmatmul_module

from dqc.kernels.qmatmul_amx import qmatmul_amx

AMX = tvm.target.Target({"kind": "llvm", "mcpu": "sapphirerapids"})
HOST_HAS_AMX = "amx_int8" in open("/proc/cpuinfo").read()


def test_tdpbusd_in_the_assembly_and_k_padded_to_tiles():
    mod, kernels = qmatmul_module(np.ones((70, 32), np.int8), "uint8", AMX)
    assert "dqc_qmatmul_amx" in kernels
    # K = 70 is read as two 64-byte steps: rows of 128 codes
    assert 'T.Buffer((m, 128), "uint8")' in mod["dqc_qmatmul_amx"].script()
    asm = "".join(m.inspect_source("asm") for m in tvm.compile(mod, AMX).mod.imports)
    assert "tdpbusd" in asm and "ldtilecfg" in asm


def test_k_must_fill_whole_tiles():
    with pytest.raises(ValueError, match="multiple of 64"):
        qmatmul_amx(groups=15, blocks=1)


@pytest.mark.skipif(not HOST_HAS_AMX, reason="this CPU has no AMX int8 tiles to run it on")
@pytest.mark.parametrize("case", QMATMUL_CASES)
@pytest.mark.parametrize("rows", [3, 16, 37, 130])
def test_amx_matmul_is_exact(case, rows):
    assert_qmatmul_exact(case, AMX, "dqc_qmatmul_amx", rows)
