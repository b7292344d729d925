"""PackInt4Weights: 4-bit weight constants are stored two per byte; results are unchanged."""

import numpy as np
import pytest
import tvm
from dqc.passes.pack_int4_weights import PackInt4Weights
from tvm import relax, te, tirx

from dqc._tvm import tensor
from dqc.compiler import constant_bytes


def _matmul(x, w):
    k = te.reduce_axis((0, w.shape[0]), "k")
    return te.compute(
        (x.shape[0], w.shape[1]),
        lambda i, j: te.sum(x[i, k].astype("int32") * w[k, j].astype("int32"), axis=k),
    )


def _module(weights: np.ndarray) -> tvm.IRModule:
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType([tirx.Var("n", "int64"), weights.shape[0]], "int8"))
    with bb.function("main", [x]):
        with bb.dataflow():
            out = bb.emit_output(bb.emit_te(_matmul, x, relax.const(weights)))
        bb.emit_func_output(out)
    return bb.get()


def _run(mod, x):
    executable = tvm.compile(mod, tvm.target.Target({"kind": "llvm"}))
    return relax.VirtualMachine(executable, tvm.cpu())["main"](tensor(x)).numpy()


@pytest.mark.parametrize(("low", "high", "packed"), [(-8, 8, True), (-128, 128, False)])
def test_4bit_weights_are_packed_and_results_unchanged(low, high, packed):
    rng = np.random.default_rng(0)
    weights = rng.integers(low, high, (33, 17)).astype(np.int8)
    x = rng.integers(-128, 128, (5, 33)).astype(np.int8)
    mod = _module(weights)
    packed_mod = PackInt4Weights()(mod)
    expected_bytes = -(-weights.size // 2) if packed else weights.size
    assert constant_bytes(packed_mod) == expected_bytes
    np.testing.assert_array_equal(_run(packed_mod, x), _run(mod, x))
    np.testing.assert_array_equal(_run(mod, x), x.astype(np.int32) @ weights.astype(np.int32))
