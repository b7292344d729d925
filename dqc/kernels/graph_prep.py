"""Graph preparation inside the compiled program: edge list -> CSR sorted by target.

From ``edge_index`` [2, E] it drops self-loops, adds one per node when ``add_loops`` (PyG's
``add_remaining_self_loops``), and counting-sorts the edges by target, stably (the order of
``dqc.graph_prep.prepare_graph``: original order within a row, the self-loop last). Two
passes over the edges instead of a comparison sort, and no Python or NumPy at run time, so
the library alone turns ``(x, edge_index)`` into logits, on any device.

Outputs have capacity ``E + N`` (the most edges there can be); ``AddGraphPrep`` cuts them to
``indptr[N]`` edges at run time. The unused tail is filled with node 0.

"""

from __future__ import annotations

from tvm.script import tirx as T


def graph_prep(add_loops: bool):
    """PrimFunc ``(edge_index [2, e]) -> (src [cap], dst [cap], indptr [n+1], scratch [n])``."""
    initial = 1 if add_loops else 0

    @T.prim_func
    def dqc_graph_prep(
        var_edges: T.handle,
        var_src: T.handle,
        var_dst: T.handle,
        var_indptr: T.handle,
        var_count: T.handle,
    ):
        T.func_attr({"tirx.noalias": True})
        e = T.int64()
        n = T.int64()
        rows = T.int64()
        cap = T.int64()
        edges = T.match_buffer(var_edges, (2, e), "int64")
        src = T.match_buffer(var_src, (cap,), "int64")
        dst = T.match_buffer(var_dst, (cap,), "int64")
        indptr = T.match_buffer(var_indptr, (rows,), "int64")
        count = T.match_buffer(var_count, (n,), "int64")
        for i in range(n):
            count[i] = T.int64(initial)
        for k in range(e):
            if edges[0, k] != edges[1, k]:
                count[edges[1, k]] = count[edges[1, k]] + T.int64(1)
        indptr[0] = T.int64(0)
        for i in range(n):
            indptr[i + 1] = indptr[i] + count[i]
            count[i] = indptr[i]
        for k in range(e):
            if edges[0, k] != edges[1, k]:
                src[count[edges[1, k]]] = edges[0, k]
                dst[count[edges[1, k]]] = edges[1, k]
                count[edges[1, k]] = count[edges[1, k]] + T.int64(1)
        if add_loops:
            for i in range(n):
                src[count[i]] = i
                dst[count[i]] = i
        for k in range(indptr[n], cap):
            src[k] = T.int64(0)
            dst[k] = T.int64(0)

    return dqc_graph_prep
