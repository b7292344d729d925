"""The first layer's matmul straight from a sparse float input: quantize, check and multiply
in one pass over ``x``, touching the weights only for the input's nonzero values.

Bag-of-words features (Cora: 1.3 % of 2,708 x 1,433 values nonzero) make the first layer
of a node classifier its most expensive part, though almost every product in it is zero: a
zero feature quantizes to the zero point, and ``(code - a_zero) * w`` vanishes. The dense
path writes all codes (3.9 MB on Cora) and multiplies them all. This kernel reads each row
of ``x`` once, 16 values at a time, and stores the column indices of the nonzero ones
(LLVM's ``masked.compressstore``: one ``vpcompressd`` on AVX-512, no branch per value) in a
list, one per parallel task of ``ROWS`` rows; then, for each listed value, it adds ``(code -
a_zero) * (b[k, :] - b_zero)`` to the row's int32 sums. Listing the whole row before the
products leaves two data-dependent loop exits per row, where listing it in stack-sized
chunks of 240 columns had two per chunk (the whole-row list: about 10 % faster on Cora).
The sums are ``dqc.qmatmul``'s on the codes, bit for bit: only exact zeros (+0.0, -0.0)
are skipped, and their terms are exactly zero. NaN and Inf are nonzero, so their rows get
flagged as ``quantize_checked`` flags them.

A dense input pays a row of multiply-adds for every value, far slower than a dot-product
matmul, so the compiler uses this kernel only for inputs known to be sparse
(``dqc.passes.sparse_input_matmul``).
"""

from __future__ import annotations

from tvm import tirx
from tvm.script import tirx as T

from dqc.kernels.quantize import NON_FINITE_EXPONENT, code

GROUP = 16  # float32 values tested at once: one AVX-512 register
# Groups read ahead of the test: the hint keeps more lines of x in flight than the hardware
# prefetcher does behind this loop (about 10 % faster on Cora's input).
PREFETCH_GROUPS = 16
ROWS = 32  # rows per parallel task, which share one list of column indices
MAGNITUDE_BITS = 0x7FFFFFFF  # all but the sign bit: zero for +0.0 and -0.0 only


def sparse_input_qmatmul(
    features: int,
    outputs: int,
    scale: float,
    zero_point: int,
    qmin: int,
    qmax: int,
    code_dtype: str,
    a_zero: int,
    b_zero: int,
):
    """PrimFunc ``(x [n, features] float32, w [features, outputs] int8) -> (sums [n,
    outputs] int32, non_finite [n] int8)``: ``sums`` is ``dqc.qmatmul(quantize(x), w)`` with
    zero points ``a_zero`` and ``b_zero``; ``non_finite[i]`` is 1 where row ``i`` holds NaN /
    Inf. The weights stay int8 codes (no wider copy in the binary)."""
    groups = features // GROUP
    magnitude, exponent = T.uint32(MAGNITUDE_BITS), T.uint32(NON_FINITE_EXPONENT)

    # Helpers build expressions rather than lets: a let that a vectorized loop reads turns
    # into a heap buffer, allocated once per row.
    def magnitude_bits(value):
        return T.bitwise_and(T.reinterpret("uint32", value), magnitude)

    def group_nonzero(x, i, start):
        """Which of ``x[i, start : start + GROUP]`` are nonzero (a vector of GROUP bools)."""
        lanes = T.reinterpret(f"uint32x{GROUP}", x[i, T.ramp(start, 1, GROUP)])
        return T.bitwise_and(lanes, T.Broadcast(magnitude, GROUP)) != T.Broadcast(
            T.uint32(0), GROUP
        )

    def centered(value):
        """``code(value) - a_zero`` in int32. Where that cannot be negative (``a_zero`` is
        the grid's lowest code, as for non-negative features), it passes through uint8: LLVM
        then knows the upper 24 bits are zero and multiplies with ``vpmaddwd`` (one uop)
        instead of ``vpmulld`` (two), about 10 % of the kernel on Cora."""
        centered = T.Cast("int32", code(value, scale, zero_point, qmin, qmax, code_dtype)) - a_zero
        if qmin >= a_zero and qmax - a_zero <= 255:
            return T.Cast("int32", T.Cast("uint8", centered))
        return centered

    @T.macro
    def prefetch_ahead(x, i, g):
        # llvm.prefetch(address, read, high temporal locality, data cache); past the row's
        # end it hints the next row, past the input's end it is dropped (no fault).
        ahead = T.address_of(x[i, (g + PREFETCH_GROUPS) * GROUP])
        T.evaluate(tirx.call_intrin("void", "tirx.prefetch", ahead, 0, 3, 1))

    @T.macro
    def add_value(x, w, sums, non_finite, i, k):
        non_finite[i] = non_finite[i] | T.Cast("int8", magnitude_bits(x[i, k]) >= exponent)
        for j in T.vectorized(outputs):
            sums[i, j] = sums[i, j] + centered(x[i, k]) * (T.Cast("int32", w[k, j]) - b_zero)

    @T.prim_func(s_tir=True)
    def dqc_sparse_input_qmatmul(
        var_x: T.handle, var_w: T.handle, var_sums: T.handle, var_non_finite: T.handle
    ):
        T.func_attr({"tirx.noalias": True, "tirx.is_scheduled": True})
        n = T.int64()
        x = T.match_buffer(var_x, (n, features), "float32")
        w = T.match_buffer(var_w, (features, outputs), "int8")
        sums = T.match_buffer(var_sums, (n, outputs), "int32")
        non_finite = T.match_buffer(var_non_finite, (n,), "int8")
        for b in T.parallel((n + ROWS - 1) // ROWS):
            with T.sblock("rows"):
                vb = T.axis.spatial((n + ROWS - 1) // ROWS, b)
                T.reads(x[vb * ROWS : vb * ROWS + ROWS, 0:features], w[0:features, 0:outputs])
                T.writes(
                    sums[vb * ROWS : vb * ROWS + ROWS, 0:outputs],
                    non_finite[vb * ROWS : vb * ROWS + ROWS],
                )
                # one list per block of rows (a heap buffer): a whole row listed at once
                listed = T.alloc_buffer((groups * GROUP,), "int32", scope="global")
                count = T.alloc_buffer((1,), "int32", scope="global")
                for vi in range(vb * ROWS, T.min(vb * ROWS + ROWS, n)):
                    non_finite[vi] = T.int8(0)
                    for j in T.vectorized(outputs):
                        sums[vi, j] = 0
                    count[0] = 0
                    for g in range(groups):
                        prefetch_ahead(x, vi, g)
                        T.evaluate(
                            T.call_llvm_intrin(
                                "void",
                                "llvm.masked.compressstore",
                                T.ramp(g * GROUP, 1, GROUP),
                                T.address_of(listed[count[0]]),
                                group_nonzero(x, vi, g * GROUP),
                            )
                        )
                        count[0] = count[0] + T.call_llvm_pure_intrin(
                            "int32",
                            "llvm.vector.reduce.add",
                            T.Cast(f"int32x{GROUP}", group_nonzero(x, vi, g * GROUP)),
                        )
                    for t in range(count[0]):
                        add_value(x, w, sums, non_finite, vi, listed[t])
                    for k in range(groups * GROUP, features):
                        if magnitude_bits(x[vi, k]) != T.uint32(0):
                            add_value(x, w, sums, non_finite, vi, k)

    return dqc_sparse_input_qmatmul
