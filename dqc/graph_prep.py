"""Input checking and graph preparation shared by the runtime and the integer reference.

A compiled model takes ``x`` ([N, F] float32) and ``edge_index`` ([2, E] int64, row 0 the
sources, row 1 the targets, PyG's convention). Before the binary runs, the graph is prepared
like the model's training-time preprocessing and laid out for CSR kernels: self-loops are
replaced by one per node (GCN, GAT: PyG's ``add_remaining_self_loops``) or removed (GIN),
edges are sorted by target (stable), and ``indptr`` is the CSR row pointer of the targets.
Duplicate edges are kept: each is a separate message, as in PyG.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dqc.pooling import graph_pointer


@dataclass(frozen=True)
class PreparedGraph:
    num_nodes: int
    src: np.ndarray  # int64 [E'], sorted by target
    dst: np.ndarray  # int64 [E'], non-decreasing
    indptr: np.ndarray  # int64 [N + 1]


def _as_numpy(value, name: str) -> np.ndarray:
    if hasattr(value, "detach"):  # torch.Tensor
        value = value.detach().cpu().numpy()
    if not isinstance(value, np.ndarray):
        raise ValueError(
            f"{name} must be a NumPy array or torch tensor, got {type(value).__name__}"
        )
    return value


def accumulator_in_degree_bound(message_bits: int) -> int:
    """Largest in-degree (self-loop included) whose sum of messages is exact in int32.

    The integer kernels add zero-centred message codes, each of magnitude at most
    ``2**bits - 1``, in an int32 accumulator: a node with ``d`` in-edges sums to at most
    ``d * (2**bits - 1)``, exact while that stays within ``2**31 - 1`` (8,421,504 in-edges at
    INT8, 143,165,576 at INT4)."""
    return (2**31 - 1) // (2**message_bits - 1)


def check_node_ids(edge_index: np.ndarray, num_nodes: int) -> None:
    """``ValueError`` naming the first kind of bad id: negative, or past the last node."""
    # One pass: read as unsigned, a negative id is larger than any node count.
    unsigned = np.uint64 if edge_index.dtype == np.int64 else np.uint32
    if edge_index.size and int(edge_index.view(unsigned).max()) >= num_nodes:
        low, high = int(edge_index.min()), int(edge_index.max())
        if low < 0:
            raise ValueError(f"edge_index has a negative node id ({low})")
        raise ValueError(f"edge_index refers to node {high}, but x has only {num_nodes} nodes")


def _check_in_degree(edge_index: np.ndarray, num_nodes: int, max_in_degree: int) -> None:
    src, dst = edge_index
    in_degree = np.bincount(dst[src != dst], minlength=num_nodes) + 1
    node = int(in_degree.argmax())
    if in_degree[node] > max_in_degree:
        raise ValueError(
            f"node {node} has {in_degree[node]} in-edges (self-loop included), over the "
            f"{max_in_degree} the compiled model's int32 accumulator sums exactly"
        )


def check_inputs(
    x,
    edge_index,
    num_features: int,
    max_nodes: int,
    max_edges: int,
    max_in_degree: int | None = None,
    check_finite: bool = True,
    check_ids: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Checked ``(x float32 [N, F], edge_index int64 [2, E])``; a ``ValueError`` names the
    problem. ``max_in_degree`` (integer builds) is ``accumulator_in_degree_bound``;
    ``check_finite=False`` leaves NaN / Inf to a binary that flags them itself, and
    ``check_ids=False`` node ids to a binary that checks them (``dqc.kernels.graph_prep``)."""

    x = _as_numpy(x, "x")
    edge_index = _as_numpy(edge_index, "edge_index")
    if x.dtype != np.float32:
        raise ValueError(f"x must be float32, got {x.dtype}")
    if x.ndim != 2 or x.shape[1] != num_features:
        raise ValueError(f"x must have shape [num_nodes, {num_features}], got {list(x.shape)}")
    num_nodes = x.shape[0]
    if num_nodes == 0:
        raise ValueError("the graph is empty: x has 0 nodes")
    if num_nodes > max_nodes:
        raise ValueError(f"x has {num_nodes} nodes, over the compiled bound of {max_nodes}")
    # Any NaN or Inf makes the sum of squares (one BLAS dot, no cancellation) non-finite;
    # only then, or when finite squares overflow float32, look at every value.
    x = np.ascontiguousarray(x)
    flat = x.reshape(-1)
    if check_finite and not np.isfinite(np.dot(flat, flat)) and not np.isfinite(x).all():
        raise ValueError("x contains NaN or Inf")
    if edge_index.dtype not in (np.int64, np.int32):
        raise ValueError(f"edge_index must be int64 (or int32), got {edge_index.dtype}")
    if edge_index.ndim != 2 or edge_index.shape[0] != 2:
        raise ValueError(f"edge_index must have shape [2, num_edges], got {list(edge_index.shape)}")
    if edge_index.shape[1] > max_edges:
        raise ValueError(
            f"edge_index has {edge_index.shape[1]} edges, over the compiled bound of {max_edges}"
        )
    # Every node has at most E in-edges plus its self-loop: only count when that can overflow
    # (counting needs valid ids, so then they are checked here whoever else checks them).
    count_degrees = max_in_degree is not None and edge_index.shape[1] + 1 > max_in_degree
    if check_ids or count_degrees:
        check_node_ids(edge_index, num_nodes)
    if edge_index.size and count_degrees:
        _check_in_degree(edge_index, num_nodes, max_in_degree)
    return x, edge_index.astype(np.int64, copy=False)


def check_batch(batch, num_nodes: int) -> np.ndarray:
    """``graph_ptr`` of a graph-level model's input from PyG's ``batch`` vector (``None``: one
    graph), with one empty graph appended (the compiled program needs at least 3 entries; its
    row is dropped). ``batch`` must be non-decreasing graph ids, as PyG's batching makes."""
    if batch is None:
        batch = np.zeros(num_nodes, np.int64)
    batch = _as_numpy(batch, "batch")
    if batch.dtype not in (np.int64, np.int32):
        raise ValueError(f"batch must be int64 (or int32), got {batch.dtype}")
    if batch.shape != (num_nodes,):
        raise ValueError(
            f"batch must have shape [{num_nodes}] (one graph id per node), got {list(batch.shape)}"
        )
    if batch[0] < 0:
        raise ValueError(f"batch has a negative graph id ({int(batch.min())})")
    if np.any(batch[1:] < batch[:-1]):
        raise ValueError("batch must be non-decreasing (nodes grouped by graph, as PyG batches)")
    graph_ptr = graph_pointer(batch.astype(np.int64), int(batch[-1]) + 1)
    return np.append(graph_ptr, graph_ptr[-1])


def prepare_graph(edge_index: np.ndarray, num_nodes: int, self_loops: str) -> PreparedGraph:
    """Self-loops per ``self_loops`` (``"add"`` or ``"remove"``), edges sorted by target."""
    src, dst = edge_index
    keep = src != dst
    src, dst = src[keep], dst[keep]
    if self_loops == "add":
        loops = np.arange(num_nodes, dtype=np.int64)
        src, dst = np.concatenate([src, loops]), np.concatenate([dst, loops])
    elif self_loops != "remove":
        raise ValueError(f"self_loops must be 'add' or 'remove', got {self_loops!r}")
    order = np.argsort(dst, kind="stable")
    src, dst = src[order], dst[order]
    indptr = np.zeros(num_nodes + 1, np.int64)
    np.cumsum(np.bincount(dst, minlength=num_nodes), out=indptr[1:])
    return PreparedGraph(num_nodes, np.ascontiguousarray(src), np.ascontiguousarray(dst), indptr)
