"""FuseInputMatmul: on AMX the first matmul quantizes x itself, with the same results and
NaN / Inf flags as the quantize kernel it replaces."""

import numpy as np
import pytest
import tvm
from dqc.passes.check_finite_input import ATTR, CheckFiniteInput
from dqc.passes.fuse_input_matmul import FuseInputMatmul
from dqc.passes.fuse_input_recode import FuseInputRecode
from dqc.passes.legalize import DQC_LEGALIZE_MAP
from dqc.passes.lower_message_passing import LowerMessagePassing
from tvm import relax

from dqc._tvm import tensor
from dqc.kernels.quantize import CHECKED_ATTR
from dqc.pipeline import quantize_passes

AMX = tvm.target.Target({"kind": "llvm", "mcpu": "sapphirerapids"})
VNNI = tvm.target.Target({"kind": "llvm", "mcpu": "cascadelake"})
HOST_HAS_AMX = "amx_int8" in open("/proc/cpuinfo").read()


def _lowered(mod: tvm.IRModule, target, fuse: bool) -> tvm.IRModule:
    passes = [
        *quantize_passes(),
        LowerMessagePassing(),
        CheckFiniteInput(),
        relax.transform.FoldConstant(),  # constant weights: the dot-product matmuls
        relax.transform.LegalizeOps(customize_legalize_map=DQC_LEGALIZE_MAP),
        FuseInputRecode(),
    ]
    with target:
        return tvm.transform.Sequential(passes + ([FuseInputMatmul()] if fuse else []))(mod)


def _kernels(mod: tvm.IRModule) -> list[str]:
    return [gv.name_hint for gv, f in mod.functions.items() if isinstance(f, tvm.tirx.PrimFunc)]


def _quantize_kernels(mod: tvm.IRModule) -> int:
    kernels = [f for f in mod.functions.values() if isinstance(f, tvm.tirx.PrimFunc)]
    return sum(CHECKED_ATTR in f.attrs for f in kernels)


@pytest.mark.parametrize("arch", ["gcn", "gin"])
def test_the_input_quantize_moves_into_the_amx_matmul(tiny, arch):
    mod, inputs, _ = tiny(arch)  # 300 nodes: 18 whole tiles of 16 rows and a partial one
    separate, fused = _lowered(mod, AMX, fuse=False), _lowered(mod, AMX, fuse=True)
    assert _quantize_kernels(separate) == 1 and _quantize_kernels(fused) == 0
    assert "dqc_quantize_qmatmul_amx" in _kernels(fused)
    assert "dqc_quantize_qmatmul_amx" not in _kernels(separate)
    if not HOST_HAS_AMX:
        pytest.skip("this CPU has no AMX int8 tiles to run the fused kernel on")

    x = inputs[0].copy()
    x[[2, 299], [0, 3]] = [np.nan, -np.inf]  # a whole tile's row and the partial tile's last
    expected, got = _run(separate, [x, *inputs[1:]]), _run(fused, [x, *inputs[1:]])
    flags = int(fused["main"].attrs[ATTR])
    assert np.flatnonzero(got[flags]).tolist() == [2, 299]
    for want, have in zip(expected, got, strict=True):
        np.testing.assert_array_equal(have, want)


def test_without_amx_the_quantize_kernel_stays(tiny):
    mod, _, _ = tiny("gcn")
    separate = _lowered(mod, VNNI, fuse=False)
    tvm.ir.assert_structural_equal(FuseInputMatmul()(separate), separate)


def _run(mod: tvm.IRModule, inputs) -> list[np.ndarray]:
    vm = relax.VirtualMachine(tvm.compile(mod, AMX), tvm.cpu())
    return [t.numpy() for t in vm["main"](*[tensor(a) for a in inputs])]
