"""The message kernel asks for source rows ``PREFETCH_EDGES`` edges ahead: one prefetch per
cache line of each gathered row, up to ``PREFETCH_LINES``, on x86 and on AArch64 (plus the
row's last byte where rows are not whole lines); a row wider than one pass over the edges is
prefetched part by part."""

import re

import numpy as np
import pytest
import tvm
from conftest import gather_sum_kernel

from dqc._tvm import tensor
from dqc.kernels.spmm_csr import PREFETCH_LINES
from dqc.targets import PROFILES

PREFETCH = {"x86": re.compile(r"\bprefetcht0\b"), "aarch64": re.compile(r"\bprfm\s+pldl1keep")}
TARGETS = {"x86": "llvm", "aarch64": PROFILES["arm64-neon"].target}


@pytest.mark.parametrize("arch", sorted(TARGETS))
@pytest.mark.parametrize(
    "width, dtype, lines",
    [
        (128, "float32", 8),  # 2 passes of 4 lines
        (128, "int8", 2),  # 2 passes of 1 line
        (41, "int8", 2),  # 1 pass; its 41 bytes straddle two lines at most places
        (41, "float32", 4),  # 1 pass of 164 bytes: 3 lines, straddling a fourth mostly
        (1433, "int8", PREFETCH_LINES),  # 23 passes of 1 line, the first 16 prefetched
    ],
)
def test_one_prefetch_per_cache_line_of_the_row(arch, width, dtype, lines):
    executable = tvm.compile(gather_sum_kernel(width, dtype), tvm.target.Target(TARGETS[arch]))
    asm = "".join(m.inspect_source("asm") for m in executable.mod.imports)
    asm += executable.mod.inspect_source("asm")
    assert len(PREFETCH[arch].findall(asm)) == lines


def test_prefetching_past_the_last_edge_stays_in_bounds():
    """Edges near the end prefetch edge ``e - 1``'s row; the sums are unchanged."""
    rng = np.random.default_rng(1)
    n, e, width = 50, 7, 128
    src = rng.integers(0, n, e)
    dst = np.sort(rng.integers(n - 3, n, e))  # every edge in the last rows
    indptr = np.searchsorted(dst, np.arange(n + 1)).astype(np.int64)
    x = rng.standard_normal((n, width)).astype(np.float32)
    kernel = tvm.compile(gather_sum_kernel(width, "float32"), "llvm")
    out = tvm.runtime.empty((n, width), "float32")
    kernel(tensor(indptr), tensor(src.astype(np.int64)), tensor(x), out)
    expected = np.zeros((n, width), np.float32)
    np.add.at(expected, dst, x[src])
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-6)
