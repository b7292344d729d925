"""FuseInputRecode: the kernel quantizing x writes the first matmul's operands directly, with
the same results and NaN / Inf flags as the separate recode."""

import numpy as np
import pytest
import tvm
from dqc.passes.check_finite_input import ATTR, CheckFiniteInput
from dqc.passes.fuse_input_recode import FuseInputRecode
from dqc.passes.legalize import DQC_LEGALIZE_MAP, RECODE_ATTR, _dot_product_kernel
from dqc.passes.lower_message_passing import LowerMessagePassing
from tvm import relax

from dqc._tvm import tensor
from dqc.pipeline import quantize_passes
from dqc.targets import host_target

TARGET = tvm.target.Target(host_target())


def _legalized(mod: tvm.IRModule, fuse: bool) -> tvm.IRModule:
    passes = [
        *quantize_passes(),
        LowerMessagePassing(),
        CheckFiniteInput(),
        relax.transform.FoldConstant(),  # constant weights: the dot-product matmuls
        relax.transform.LegalizeOps(customize_legalize_map=DQC_LEGALIZE_MAP),
    ]
    with TARGET:
        return tvm.transform.Sequential(passes + ([FuseInputRecode()] if fuse else []))(mod)


def _recodes(mod: tvm.IRModule) -> int:
    """Kernels of ``mod`` that recode a dot-product matmul's input."""
    kernels = [f for f in mod.functions.values() if isinstance(f, tvm.tirx.PrimFunc)]
    return sum(RECODE_ATTR in f.attrs for f in kernels)


def _run(mod: tvm.IRModule, inputs) -> list[np.ndarray]:
    vm = relax.VirtualMachine(tvm.compile(mod, TARGET), tvm.cpu())
    return [t.numpy() for t in vm["main"](*[tensor(a) for a in inputs])]


@pytest.mark.parametrize("arch", ["gcn", "gin"])
def test_the_input_recode_moves_into_the_quantize_kernel(tiny, arch):
    with TARGET:
        if _dot_product_kernel() is None:
            pytest.skip("this CPU has no dot-product instructions (VNNI, sdot, AVX2)")
    mod, inputs, _ = tiny(arch)
    separate, fused = _legalized(mod, fuse=False), _legalized(mod, fuse=True)
    assert _recodes(fused) == _recodes(separate) - 1  # the later layers' recodes stay

    x = inputs[0].copy()
    x[[2, 5], [0, 3]] = [np.nan, -np.inf]
    expected, got = _run(separate, [x, *inputs[1:]]), _run(fused, [x, *inputs[1:]])
    flags = int(fused["main"].attrs[ATTR])
    assert np.flatnonzero(got[flags]).tolist() == [2, 5]
    for want, have in zip(expected, got, strict=True):
        np.testing.assert_array_equal(have, want)


def test_modules_without_a_recode_are_left_alone(tiny):
    mod, _, _ = tiny("gcn", "fp32")
    legalized = _legalized(mod, fuse=False)
    assert _recodes(legalized) == 0
    tvm.ir.assert_structural_equal(FuseInputRecode()(legalized), legalized)
