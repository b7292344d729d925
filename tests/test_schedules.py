"""dqc's default elementwise schedule: the innermost axis becomes vectors, a short one (a
handful of classes) short power-of-two vectors, and results stay those of the NumPy spec."""

import re

import numpy as np
import pytest
import tvm
from dqc.schedules.common import vector_lanes
from dqc.schedules.elementwise import Elementwise
from tvm import te, tirx

from dqc._tvm import tensor
from dqc.fixed_point import FixedPoint, requantize
from dqc.kernels.requantize import requantize as requantize_kernel

TARGET = tvm.target.Target({"kind": "llvm"})


def _vector_extents(func: tirx.PrimFunc) -> list[int]:
    return [int(m) for m in re.findall(r"T\.vectorized\((?:T\.int64\()?(\d+)", func.script())]


@pytest.mark.parametrize("width", [2, 7, 37])
def test_requantize_rows_are_vectorized_and_exact(width):
    n = tirx.Var("n", "int64")
    terms = te.placeholder((n, width), "int32", name="terms")
    fixed = FixedPoint.from_reals([0.0123])
    out = requantize_kernel([terms], [3], fixed, -5, -128, 127, "int8")
    func = te.create_prim_func([terms, out])
    scheduled = Elementwise().apply(func, TARGET, False).mod["main"]

    extents = _vector_extents(scheduled)
    # power-of-two vectors only (no <3 x i8> for LLVM's AArch64 backend to miscompile)
    assert extents and all(e <= width and e & (e - 1) == 0 for e in extents)
    assert width >= 16 or sum(extents) >= width - 1  # short axes: all but one element in vectors

    rng = np.random.default_rng(width)
    a = rng.integers(-20000, 20000, (300, width)).astype(np.int32)
    result = tvm.runtime.empty((300, width), "int8")
    tvm.compile(scheduled, TARGET)(tensor(a), result)
    expected = requantize([a], [3], fixed, -5, -128, 127)
    np.testing.assert_array_equal(result.numpy(), expected)


def test_byte_kernels_get_byte_lanes():
    """An int8 -> uint8 recoding vectorizes by the native vector's byte count, not by its
    count of 32-bit lanes (4x fewer iterations)."""
    n = tirx.Var("n", "int64")
    codes = te.placeholder((n, 256), "int8", name="codes")
    recoded = te.compute(
        codes.shape, lambda i, j: (codes[i, j].astype("int32") + 128).astype("uint8")
    )
    scheduled = (
        Elementwise().apply(te.create_prim_func([codes, recoded]), TARGET, False).mod["main"]
    )
    assert max(_vector_extents(scheduled)) == vector_lanes(TARGET, 8)

    a = np.random.default_rng(0).integers(-128, 128, (50, 256)).astype(np.int8)
    result = tvm.runtime.empty((50, 256), "uint8")
    tvm.compile(scheduled, TARGET)(tensor(a), result)
    np.testing.assert_array_equal(result.numpy(), (a.astype(np.int32) + 128).astype(np.uint8))
