"""dqc's legalization: gathers (``relax.take``) fuse with the elementwise work around them."""

import numpy as np
import pytest
import tvm
from conftest import count_ops
from dqc.passes.legalize import DQC_LEGALIZE_MAP
from tvm import relax
from tvm.script import ir as I
from tvm.script import relax as R

from dqc._tvm import tensor


@I.ir_module
class EdgeNorm:
    """GCN's edge norm: both endpoints' ``deg^-1/2`` gathered and multiplied."""

    @R.function
    def main(
        dinv: R.Tensor(("n",), "float32"),
        src: R.Tensor(("e",), "int64"),
        dst: R.Tensor(("e",), "int64"),
    ):
        with R.dataflow():
            a = R.take(dinv, src, axis=0)
            b = R.take(dinv, dst, axis=0)
            norm = R.multiply(a, b)
            R.output(norm)
        return norm


def _fused(mod: tvm.IRModule, legalize_map: dict | None) -> tvm.IRModule:
    return tvm.transform.Sequential(
        [
            relax.transform.LegalizeOps(customize_legalize_map=legalize_map),
            relax.transform.AnnotateTIROpPattern(),
            relax.transform.FuseOps(),
            relax.transform.FuseTIR(),
            relax.transform.DeadCodeElimination(),
        ]
    )(mod)


@pytest.mark.parametrize(("legalize_map", "kernels"), [(DQC_LEGALIZE_MAP, 1), (None, 3)])
def test_gathers_fuse_into_one_kernel(legalize_map, kernels):
    """With dqc's map the two gathers and the multiply are one kernel; with TVM's own (the
    control) each gather stays a kernel of its own, writing a float array per edge."""
    mod = _fused(EdgeNorm, legalize_map)
    assert count_ops(mod, "R.call_tir") == kernels

    rng = np.random.default_rng(0)
    dinv = rng.random(50, dtype=np.float32)
    src, dst = rng.integers(0, 50, size=(2, 400))
    vm = relax.VirtualMachine(tvm.compile(mod, tvm.target.Target({"kind": "llvm"})), tvm.cpu())
    out = vm["main"](tensor(dinv), tensor(src), tensor(dst)).numpy()
    np.testing.assert_array_equal(out, dinv[src] * dinv[dst])
