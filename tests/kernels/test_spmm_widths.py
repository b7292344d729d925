"""Every row width sums right: whole vectors, a short row, and a short tail run as a whole
vector overlapping the body (``dqc.kernels.spmm_csr._feature_loops``)."""

import numpy as np
import pytest
import tvm
from conftest import gather_sum_kernel

from dqc._tvm import tensor
from dqc.kernels.spmm_csr import VECTOR, _feature_loops


@pytest.mark.parametrize("width", [5, VECTOR, 41, 2 * VECTOR + 1, 131])
@pytest.mark.parametrize("dtype", ["int8", "float32"])
def test_gather_sum_matches_numpy(width, dtype):
    rng = np.random.default_rng(width)
    n, e = 97, 900
    src, dst = rng.integers(0, n, e), np.sort(rng.integers(0, n, e))
    indptr = np.searchsorted(dst, np.arange(n + 1)).astype(np.int64)
    x = rng.integers(-128, 128, (n, width)).astype(dtype)
    acc = "int32" if dtype == "int8" else "float32"
    kernel = tvm.compile(gather_sum_kernel(width, dtype), "llvm")
    out = tvm.runtime.empty((n, width), acc)
    kernel(tensor(indptr), tensor(src.astype(np.int64)), tensor(x), out)
    expected = np.zeros((n, width), np.int64)
    np.add.at(expected, dst, x[src].astype(np.int64))
    np.testing.assert_array_equal(out.numpy(), expected)


def test_a_short_tail_overlaps_the_body_only_where_the_row_has_one():
    loops = _feature_loops(41, [])
    assert [(lp.start, lp.extent, lp.overlap) for lp in loops] == [(0, 32, 0), (25, 16, 7)]
    (short,) = _feature_loops(5, [])
    assert (short.start, short.extent, short.vectorized, short.overlap) == (0, 5, True, 0)
