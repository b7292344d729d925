"""Mean or sum of node rows per graph (``dqc.segment_mean`` / ``dqc.segment_sum``), graphs
given by a CSR ``graph_ptr``.

``integer``: int32 zero-centred codes in; the mean is ``dqc.pooling.mean_fixed`` (int64
sums), the sum is exact (int64, cast to int32: the compiled node bound keeps it in range).
``floating``: float32 sums (divided by the node count for the mean), for FP32 models. Empty
graphs give 0.
"""

from __future__ import annotations

from tvm.script import tirx as T

from dqc.pooling import FRAC_BITS


def integer(width: int, mean: bool):
    """``x [n, width]`` int32, ``graph_ptr [g + 1]`` -> int32 ``[g, width]``."""

    @T.prim_func(s_tir=True)
    def dqc_segment_pool(var_x: T.handle, var_ptr: T.handle, var_out: T.handle):
        T.func_attr({"tirx.noalias": True})
        n = T.int64()
        rows = T.int64()  # graphs + 1
        x = T.match_buffer(var_x, (n, width), "int32")
        ptr = T.match_buffer(var_ptr, (rows,), "int64")
        out = T.match_buffer(var_out, (rows - 1, width), "int32")
        for g in T.parallel(rows - 1):
            with T.sblock("graph"):
                vg = T.axis.spatial(rows - 1, g)
                T.reads(ptr[vg : vg + 2], x[0:n, 0:width])
                T.writes(out[vg, 0:width])
                total = T.alloc_buffer((width,), "int64", scope="global")
                for c in range(width):
                    total[c] = T.int64(0)
                for k in range(ptr[vg], ptr[vg + 1]):
                    for c in range(width):
                        total[c] = total[c] + T.Cast("int64", x[k, c])
                count = T.max(ptr[vg + 1] - ptr[vg], T.int64(1))
                for c in range(width):
                    if mean:
                        out[vg, c] = T.Cast(
                            "int32",
                            T.floordiv(
                                total[c] * T.int64(1 << (FRAC_BITS + 1)) + count,
                                count * T.int64(2),
                            ),
                        )
                    else:
                        out[vg, c] = T.Cast("int32", total[c])

    return dqc_segment_pool


def floating(width: int, mean: bool):
    """``x [n, width]`` float32, ``graph_ptr [g + 1]`` -> float32 ``[g, width]``."""

    @T.prim_func(s_tir=True)
    def dqc_segment_pool_float(var_x: T.handle, var_ptr: T.handle, var_out: T.handle):
        T.func_attr({"tirx.noalias": True})
        n = T.int64()
        rows = T.int64()
        x = T.match_buffer(var_x, (n, width), "float32")
        ptr = T.match_buffer(var_ptr, (rows,), "int64")
        out = T.match_buffer(var_out, (rows - 1, width), "float32")
        for g in T.parallel(rows - 1):
            with T.sblock("graph"):
                vg = T.axis.spatial(rows - 1, g)
                T.reads(ptr[vg : vg + 2], x[0:n, 0:width])
                T.writes(out[vg, 0:width])
                total = T.alloc_buffer((width,), "float32", scope="global")
                for c in range(width):
                    total[c] = T.float32(0)
                for k in range(ptr[vg], ptr[vg + 1]):
                    for c in range(width):
                        total[c] = total[c] + x[k, c]
                count = T.Cast("float32", T.max(ptr[vg + 1] - ptr[vg], T.int64(1)))
                for c in range(width):
                    out[vg, c] = total[c] / count if mean else total[c]

    return dqc_segment_pool_float
