"""GCN's message kernel skips the clamp on edges whose code cannot reach it; the sums stay
those of ``dqc.fixed_point.requantize_product`` with the clamp, edge for edge."""

import numpy as np
import tvm
from dqc.schedules.spmm_csr import schedule_rows
from tvm import s_tir

from dqc._tvm import tensor
from dqc.fixed_point import FixedPoint, requantize_product
from dqc.kernels.spmm_csr import Leaf, Node, _clamp_free, spmm_csr

WIDTH = 37  # two vectors and a short one


def _code(leaf: int, shape: tuple[int, ...], zero: int) -> Node:
    """``cast(leaf) - zero`` of an int8 leaf."""
    cast = Node("cast", "int32", shape, (Node("leaf", "int8", shape, leaf=leaf),))
    return Node("subtract", "int32", shape, (cast, Node("const", "int32", (), value=zero)))


def test_kernel_with_and_without_clamp_matches_the_reference():
    rng = np.random.default_rng(0)
    fixed, zero_point, qmin, qmax = FixedPoint.from_reals([0.013]), 3, -128, 127
    a_zero, b_zero = -7, 5
    attrs = dict(
        multipliers=fixed.multipliers,
        shift=fixed.shift,
        zero_point=zero_point,
        qmin=qmin,
        qmax=qmax,
    )
    message = Node(
        "requantize_product",
        "int32",
        (WIDTH,),
        (_code(1, (1,), a_zero), _code(0, (WIDTH,), b_zero)),
        attrs=attrs,
    )
    free = _clamp_free(message)
    assert free is not None and -128 - a_zero < free[1][0] and free[1][1] < 127 - a_zero

    n, e = 300, 6000
    src, dst = rng.integers(0, n, e), np.sort(rng.integers(0, n, e))
    indptr = np.searchsorted(dst, np.arange(n + 1)).astype(np.int64)
    b = rng.integers(-128, 128, (n, WIDTH)).astype(np.int8)
    a = rng.integers(-128, 128, (e, 1)).astype(np.int8)  # codes on both sides of the interval
    centred = a.astype(np.int64) - a_zero
    assert ((centred >= free[1][0]) & (centred <= free[1][1])).mean() > 0.1
    assert ((centred < free[1][0]) | (centred > free[1][1])).mean() > 0.1

    leaves = [Leaf("gather", "int8", (WIDTH,)), Leaf("edge", "int8", (1,))]
    sch = s_tir.Schedule(spmm_csr(message, leaves, "int32", "int64"))
    schedule_rows(sch)
    kernel = tvm.compile(sch.mod, "llvm")
    out = tvm.runtime.empty((n, WIDTH), "int32")
    kernel(tensor(indptr), tensor(src.astype(np.int64)), tensor(b), tensor(a), out)

    messages = requantize_product(
        centred, b[src].astype(np.int64) - b_zero, fixed, zero_point, qmin, qmax
    )
    expected = np.zeros((n, WIDTH), np.int64)
    np.add.at(expected, dst, messages)
    np.testing.assert_array_equal(out.numpy(), expected)
