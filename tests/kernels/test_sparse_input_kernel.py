"""The sparse-input matmul equals the quantize -> qmatmul it replaces, bit for bit, on sparse,
dense, empty and non-finite rows, for every code grid, for widths around its groups and a
row count its parallel tasks do not divide."""

import numpy as np
import pytest
import tvm

from dqc._tvm import tensor
from dqc.kernels.sparse_input_matmul import GROUP, ROWS, sparse_input_qmatmul
from dqc.qparams import QParams
from dqc.targets import host_target

# (bits, signed, zero point): int8 codes from an unsigned range, uint8, int4
GRIDS = [(8, True, -128), (8, False, 0), (4, True, -3)]


def _features(rng, rows: int, features: int, signed: bool) -> np.ndarray:
    """Bag-of-words-like rows (1-2 % nonzero) plus an all-zero, a dense and a tiny-valued row,
    signed zeros and values exactly on rounding ties."""
    x = rng.random((rows, features), dtype=np.float32)
    x *= rng.random((rows, features)) < 0.015
    if signed:
        x *= np.where(rng.random((rows, features)) < 0.5, -1, 1).astype(np.float32)
    x[0] = 0.0
    x[1] = rng.random(features, dtype=np.float32)
    x[2, ::3] = 1e-9  # nonzero, quantizes to the zero point
    x[3, ::2] = -0.0
    return x


@pytest.mark.parametrize("target", ["generic", "host"])  # compress store: emulated, native
@pytest.mark.parametrize("features", [9, GROUP, 97, 241, 1433])
@pytest.mark.parametrize("bits,signed,zero_point", GRIDS)
def test_sums_and_flags_match_quantize_then_matmul(features, bits, signed, zero_point, target):
    rng = np.random.default_rng(features * 10 + bits)
    qp = QParams(0.0173, zero_point, bits, signed)
    x = _features(rng, 2 * ROWS + 5, features, signed)  # a last, partial task of rows
    x[4, rng.integers(features)] = np.nan
    x[5, features - 1] = np.inf
    x[6, 0] = -np.inf
    b_zero, outputs = -6, 24
    b = rng.integers(qp.qmin, qp.qmax + 1, (features, outputs)).astype(np.int8)

    code_dtype = "int8" if signed else "uint8"
    kernel = sparse_input_qmatmul(
        features, outputs, qp.scale, zero_point, qp.qmin, qp.qmax, code_dtype, zero_point, b_zero
    )
    spec = host_target() if target == "host" else {"kind": "llvm"}
    run = tvm.compile(kernel, tvm.target.Target(spec))
    sums = tvm.runtime.empty((x.shape[0], outputs), "int32")
    flags = tvm.runtime.empty((x.shape[0],), "int8")
    run(tensor(x), tensor(b), sums, flags)

    finite = np.isfinite(x).all(axis=1)
    with np.errstate(invalid="ignore"):  # the codes of NaN rows are never compared
        codes = qp.quantize(x).astype(np.int64)
    expected = (codes - zero_point) @ (b.astype(np.int64) - b_zero)
    np.testing.assert_array_equal(sums.numpy()[finite], expected[finite])
    assert np.flatnonzero(flags.numpy()).tolist() == [4, 5, 6]
