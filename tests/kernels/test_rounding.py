"""The kernels' branch-free rounding equals ``dqc.fixed_point.round_fixed_to_code`` on every
value near each code's half, for both parities of the zero point, at int32 and int64."""

import numpy as np
import pytest
import tvm
from tvm import te

from dqc._tvm import tensor
from dqc.fixed_point import round_fixed_to_code, tie_window
from dqc.kernels.requantize import _round


def _values_around_halves(shift: int, dtype: str) -> np.ndarray:
    """Values within two tie windows (and a few units) of ``k + 1/2`` for codes k of both
    signs and parities, plus the extremes the kernels allow."""
    half, window = 1 << (shift - 1), tie_window(shift)
    near = np.arange(-2 * window - 3, 2 * window + 4, max(1, window // 64), dtype=np.int64)
    edges = np.array([-window - 1, -window, window, window + 1], dtype=np.int64)
    codes = np.arange(-5, 5, dtype=np.int64)
    values = (codes[:, None] << shift) + half + np.concatenate([near, edges])[None, :]
    limit = np.iinfo(dtype).max - half - window
    values = np.concatenate([values.ravel(), [limit, -limit - 1]])
    return values[(values <= limit) & (values >= -limit - 1)].astype(dtype)


@pytest.mark.parametrize(
    "dtype, shift", [("int32", 1), ("int32", 12), ("int32", 31), ("int64", 29), ("int64", 62)]
)
@pytest.mark.parametrize("zero_point", [0, -3])
def test_round_matches_round_fixed_to_code(dtype, shift, zero_point):
    values = _values_around_halves(shift, dtype)
    x = te.placeholder((values.size,), dtype)
    rounded = te.compute(x.shape, lambda i: _round(x[i], shift, zero_point, dtype))
    kernel = tvm.compile(te.create_prim_func([x, rounded]), "llvm")
    out = tvm.runtime.empty((values.size,), dtype)
    kernel(tensor(values), out)
    expected = round_fixed_to_code(values.astype(np.int64), shift, zero_point) - zero_point
    np.testing.assert_array_equal(out.numpy(), expected)
