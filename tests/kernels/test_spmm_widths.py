"""Every row width sums right: whole vectors, a short row, a short tail run as a whole
vector overlapping the features before it, and rows wider than one pass over the edges
(``dqc.kernels.spmm_csr._feature_passes``)."""

import numpy as np
import pytest
import tvm
from conftest import gather_sum_kernel

from dqc._tvm import tensor
from dqc.kernels.pack_int4 import pack_array
from dqc.kernels.spmm_csr import CHUNK, VECTOR, Leaf, _feature_passes


def _check_gather_sum(width: int, dtype: str, packed: bool):
    rng = np.random.default_rng(width)
    n, e = 97, 900
    src, dst = rng.integers(0, n, e), np.sort(rng.integers(0, n, e))
    indptr = np.searchsorted(dst, np.arange(n + 1)).astype(np.int64)
    low, high = (-8, 8) if packed else (-128, 128)
    x = rng.integers(low, high, (n, width)).astype(dtype)
    acc = "int32" if dtype == "int8" else "float32"
    kernel = tvm.compile(gather_sum_kernel(width, dtype, packed), "llvm")
    out = tvm.runtime.empty((n, width), acc)
    stored = pack_array(x) if packed else x
    kernel(tensor(indptr), tensor(src.astype(np.int64)), tensor(stored), out)
    expected = np.zeros((n, width), np.int64)
    np.add.at(expected, dst, x[src].astype(np.int64))
    np.testing.assert_array_equal(out.numpy(), expected)


@pytest.mark.parametrize("width", [5, VECTOR, 41, 2 * VECTOR + 1, 2 * CHUNK, 2 * CHUNK + 3])
@pytest.mark.parametrize("dtype", ["int8", "float32"])
def test_gather_sum_matches_numpy(width, dtype):
    _check_gather_sum(width, dtype, packed=False)


@pytest.mark.parametrize("width", [1, 5, CHUNK, 2 * CHUNK + 3])
def test_packed_gather_sum_matches_numpy(width):
    _check_gather_sum(width, "int8", packed=True)


def test_passes_and_tails():
    def layout(width):
        return [
            [(lp.start, lp.extent, lp.overlap) for lp in p.loops]
            for p in _feature_passes(width, [])
        ]

    assert layout(41) == [[(0, 32, 0), (25, 16, 7)]]
    assert layout(5) == [[(0, 5, 0)]]  # narrower than a vector: a short one
    # a third pass of 3 features overlaps the second pass's last 13
    assert layout(131) == [[(0, 64, 0)], [(64, 64, 0)], [(115, 16, 13)]]


def test_packed_passes_read_half_as_many_bytes():
    """131 features in 66 bytes: bytes 0..64 hold features b and b + 66, byte 65 only 65."""
    packed = [Leaf("gather", "int8", (131,), packed=True)]
    layout = [(p.features, p.columns) for p in _feature_passes(131, packed)]
    assert layout == [
        (((0, 32), (66, 98)), (0, 32)),
        (((32, 64), (98, 130)), (32, 64)),
        (((64, 65), (130, 131), (65, 66)), (64, 66)),
    ]
