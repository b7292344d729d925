"""Generic serial ``index_add``: ``out = base; out[index[e], :] += src[e, :]``.

The fallback for aggregations ``LowerMessagePassing`` did not turn into a CSR kernel (e.g. an
unsorted index). Rows may collide, so the edge loop stays serial.
"""

from __future__ import annotations

from tvm.script import tirx as T


def index_add(dtype: str, index_dtype: str, width: int):
    """PrimFunc over ``base [n, width]``, ``index [e]``, ``src [e, width]`` -> ``[n, width]``."""

    @T.prim_func(s_tir=True)
    def dqc_index_add(
        var_base: T.handle, var_index: T.handle, var_src: T.handle, var_out: T.handle
    ):
        T.func_attr({"tirx.noalias": True})
        n = T.int64()
        e = T.int64()
        base = T.match_buffer(var_base, (n, width), dtype)
        index = T.match_buffer(var_index, (e,), index_dtype)
        src = T.match_buffer(var_src, (e, width), dtype)
        out = T.match_buffer(var_out, (n, width), dtype)
        for i, j in T.grid(n, width):
            with T.sblock("copy"):
                vi, vj = T.axis.remap("SS", [i, j])
                out[vi, vj] = base[vi, vj]
        for k in range(e):
            with T.sblock("scatter"):
                vk = T.axis.spatial(e, k)
                T.reads(index[vk], src[vk, 0:width], out[0:n, 0:width])
                T.writes(out[0:n, 0:width])
                for j in range(width):
                    out[index[vk], j] = out[index[vk], j] + src[vk, j]

    return dqc_index_add
