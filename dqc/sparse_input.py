"""When a compiled model reads its input sparsely (``dqc.passes.sparse_input_matmul``).

Bag-of-words inputs are mostly zeros, and the sparse kernel skips them; on a dense input it
is many times slower than the dot-product matmul. The compiler cannot see the input, so
training records the share of nonzero features in the checkpoint
(``training["input_nonzero_fraction"]``), and ``dqc compile --sparse-input auto`` uses the
sparse kernel for quantized builds (INT8 and INT4) when that share is small and the
target stores the nonzero columns in one instruction (AVX-512's ``vpcompressd``; elsewhere
LLVM emulates it with a branch per value).
"""

from __future__ import annotations

from dqc.schemes import get_scheme

MODES = ("auto", "on", "off")
NONZERO_KEY = "input_nonzero_fraction"
# Largest nonzero share for which the sparse kernel beat the dense path in
# benchmarks/sparse_input.py (on Cora's shape: 1.12x faster than dense at 5 %, slower from 8 %).
MAX_NONZERO_FRACTION = 0.05


def nonzero_fraction(x) -> float:
    """Share of nonzero values in the input features ``x`` (a torch tensor)."""
    return float(x.count_nonzero()) / max(x.numel(), 1)


def use_sparse_input(mode: str, scheme: str, training: dict, target) -> bool:
    """``mode`` ``on`` / ``off`` as given; ``auto``: a quantized ``scheme`` (INT8 or INT4)
    whose checkpoint's training input was at most ``MAX_NONZERO_FRACTION`` nonzero (unknown
    counts as dense), on a ``target`` (``tvm.target.Target``) with AVX-512. INT4 weights
    stay two per byte in the binary (``PackInt4Weights`` unpacks them at each call, 10 us
    on Cora's 1,433 x 64), so INT4 gains what INT8 does: Cora's INT4 predict 2.1 -> 1.4 ms
    against INT8's 1.35 in one run."""
    from tvm.target import codegen  # here: the CLI reads this module's constants

    if mode not in MODES:
        raise ValueError(f"--sparse-input must be one of {', '.join(MODES)}, got {mode!r}")
    if mode != "auto":
        return mode == "on"
    fraction = training.get(NONZERO_KEY)
    if fraction is None or float(fraction) > MAX_NONZERO_FRACTION:
        return False
    if not get_scheme(scheme).quantized:
        return False
    return bool(codegen.llvm_cpu_has_features(["avx512f"], target))
