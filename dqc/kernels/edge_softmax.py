"""GAT's attention softmax over each target's in-edges (edges sorted by target, CSR rows).

``integer``: the Q15 spec of ``dqc.edge_softmax`` with the exp table as an input buffer.
``floating``: ``softmax(leaky_relu(logits))`` in float32 for FP32 models.
"""

from __future__ import annotations

from tvm.script import tirx as T

from dqc.edge_softmax import TABLE_BITS


def integer(code_dtype: str, heads: int, qmin: int, levels: int):
    """``alpha [e, heads]`` codes, ``indptr [n + 1]``, ``table [levels, levels]`` -> int32."""

    @T.prim_func(s_tir=True)
    def dqc_edge_softmax(
        var_alpha: T.handle, var_indptr: T.handle, var_table: T.handle, var_out: T.handle
    ):
        T.func_attr({"tirx.noalias": True})
        rows = T.int64()  # n + 1
        e = T.int64()
        alpha = T.match_buffer(var_alpha, (e, heads), code_dtype)
        indptr = T.match_buffer(var_indptr, (rows,), "int64")
        table = T.match_buffer(var_table, (levels, levels), "int32")
        out = T.match_buffer(var_out, (e, heads), "int32")
        for i, h in T.grid(rows - 1, heads):
            with T.sblock("row"):
                vi, vh = T.axis.remap("SS", [i, h])
                T.reads(indptr[vi : vi + 2], alpha[0:e, vh], table[0:levels, 0:levels])
                T.writes(out[0:e, vh])
                # "global" scope: small buffers go on the stack (registers), not the heap
                top = T.alloc_buffer((1,), "int32", scope="global")
                total = T.alloc_buffer((1,), "int64", scope="global")
                top[0] = 0
                total[0] = T.int64(0)
                for k in range(indptr[vi], indptr[vi + 1]):
                    top[0] = T.max(top[0], T.Cast("int32", alpha[k, vh]) - qmin)
                for k in range(indptr[vi], indptr[vi + 1]):
                    total[0] = total[0] + T.Cast(
                        "int64", table[T.Cast("int32", alpha[k, vh]) - qmin, top[0]]
                    )
                for k in range(indptr[vi], indptr[vi + 1]):
                    out[k, vh] = T.Cast(
                        "int32",
                        T.floordiv(
                            T.Cast("int64", table[T.Cast("int32", alpha[k, vh]) - qmin, top[0]])
                            * T.int64(1 << TABLE_BITS)
                            + total[0],
                            total[0] * T.int64(2),
                        ),
                    )

    return dqc_edge_softmax


def floating(heads: int, negative_slope: float):
    """``logits [e, heads]`` float32, ``indptr [n + 1]`` -> float32 attention weights."""

    @T.prim_func(s_tir=True)
    def dqc_edge_softmax_float(var_logits: T.handle, var_indptr: T.handle, var_out: T.handle):
        T.func_attr({"tirx.noalias": True})
        rows = T.int64()  # n + 1
        e = T.int64()
        logits = T.match_buffer(var_logits, (e, heads), "float32")
        indptr = T.match_buffer(var_indptr, (rows,), "int64")
        out = T.match_buffer(var_out, (e, heads), "float32")
        for i, h in T.grid(rows - 1, heads):
            with T.sblock("row"):
                vi, vh = T.axis.remap("SS", [i, h])
                T.reads(indptr[vi : vi + 2], logits[0:e, vh])
                T.writes(out[0:e, vh])
                top = T.alloc_buffer((1,), "float32", scope="global")
                total = T.alloc_buffer((1,), "float32", scope="global")
                top[0] = T.float32(-3.0e38)
                total[0] = T.float32(0)
                for k in range(indptr[vi], indptr[vi + 1]):
                    x = logits[k, vh]
                    top[0] = T.max(top[0], T.Select(x >= T.float32(0), x, x * negative_slope))
                for k in range(indptr[vi], indptr[vi + 1]):
                    x = logits[k, vh]
                    leaky = T.Select(x >= T.float32(0), x, x * negative_slope)
                    out[k, vh] = T.exp(leaky - top[0])
                    total[0] = total[0] + out[k, vh]
                for k in range(indptr[vi], indptr[vi + 1]):
                    out[k, vh] = out[k, vh] / total[0]

    return dqc_edge_softmax_float
