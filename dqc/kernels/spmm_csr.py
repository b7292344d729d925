"""Fused message passing over CSR rows: ``out[i, ...] = sum_{k in row i} message(k, ...)``.

Edges are sorted by target, so row ``i`` of the CSR (``indptr[i] .. indptr[i+1]``) holds the
in-edges of node ``i`` and ``indices[k]`` is the source of edge ``k``. ``message`` is an
elementwise expression tree (``Node``) whose leaves are node tensors gathered by source
(``X[indices[k], ...]``), per-edge tensors (``W[k, ...]``), per-channel constants and
scalars; it is evaluated in registers for each edge, so no ``[E, F]`` tensor is ever stored.
An ``epilogue`` (the same kind of tree over the row's sum, op ``aggregate``, and per-channel
constants) maps each sum before it is stored: the requantize / bias / ReLU after an
aggregation, so its int32 sums never travel through memory (Reddit-shaped INT8, layer 1:
25.6 MB written and read again).

The kernel's loops are ``rows`` (sblock ``spmm``, parallelized by ``dqc.schedules.spmm_csr``)
around passes of ``CHUNK`` features (width = flattened trailing shape) around the row's edges
around the pass's features: each edge reads its source row's part once per pass, the row's
sums stay in registers, and the fixed-width feature loop vectorizes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import tvm
from tvm import tirx
from tvm.script.ir_builder import IRBuilder
from tvm.script.ir_builder import tirx as T

from dqc.fixed_point import FixedPoint, clamp_free_codes
from dqc.kernels.pack_int4 import packed_width, unpack_value
from dqc.kernels.requantize import requantize_product_value, requantize_value, widened
from dqc.kernels.spmm_lookup import EXPLICIT_VECTORS, Lookup, lookup_row

CACHE_LINE = 64  # bytes
# Source rows are requested this many edges ahead of their use, up to this many cache lines
# of each (1 KB; longer rows stream in after their first lines). Chosen on the Reddit-shaped
# INT8 and FP32 GCN (4 / 8 / 16 / 32 edges ahead: 16 was fastest, 8 within 3 %).
PREFETCH_EDGES = 16
PREFETCH_LINES = 16
VECTOR = 16  # feature lanes the tail loop is sized against (int32 lanes of AVX-512)
# Features summed per pass over a row's edges: 64 int32 sums are 8 AVX2 vectors, which stay
# in registers with the message's temporaries; LLVM spilled 128 (16 vectors) to the stack on
# every edge. Wider rows take several passes, each gathering its own part of the source rows.
CHUNK = 64


@dataclass(frozen=True)
class Leaf:
    """An input buffer: ``"gather"`` ([N, *shape], read at the edge's source), ``"edge"``
    ([E, *shape], read at the edge) or ``"channel"`` (``shape`` only, broadcast)."""

    kind: str
    dtype: str
    shape: tuple[int, ...]
    packed: bool = False  # gather of 4-bit codes, two per byte (``dqc.kernels.pack_int4``)

    @property
    def width(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class Node:
    """One op of the message expression; ``shape`` is its per-edge (trailing) shape."""

    # leaf | const | cast | add | subtract | multiply | maximum | expand | requantize |
    # requantize_product (children: per-edge code, code; see dqc.fixed_point) |
    # aggregate (in an epilogue: the row's sum)
    op: str
    dtype: str
    shape: tuple[int, ...]
    children: tuple[Node, ...] = ()
    leaf: int | None = None  # index into the kernel's leaves
    value: float | int | None = None  # const
    axes: tuple[int, ...] = ()  # expand: inserted trailing axes
    attrs: dict = field(default_factory=dict, hash=False)  # requantize


def _unflat(flat: tirx.PrimExpr, shape: tuple[int, ...]) -> tuple:
    """The index into ``shape`` of flat position ``flat``."""
    index = []
    for d in reversed(shape):
        index.append(tirx.floormod(flat, d))
        flat = tirx.floordiv(flat, d)
    return tuple(reversed(index))


def _flat(index: tuple, shape: tuple[int, ...]) -> tirx.PrimExpr:
    flat = tirx.const(0, "int64")
    for i, d in zip(index, shape, strict=True):
        flat = flat * d + i
    return flat


def _broadcast(index: tuple, shape: tuple[int, ...], child: tuple[int, ...]) -> tuple:
    """Index into ``child`` (right-aligned, size-1 axes pinned to 0) of ``index`` into ``shape``."""
    offset = len(shape) - len(child)
    return tuple(
        tirx.const(0, "int64") if d == 1 else index[offset + a] for a, d in enumerate(child)
    )


def code_operand(node: Node) -> tuple[Node, int] | None:
    """``(leaf, zero point)`` of a zero-centred 8-bit code: ``cast(leaf)`` or ``cast(leaf) -
    zero_point``, the leaf possibly broadcast (``expand``); else None."""
    zero = 0
    if node.op == "subtract" and node.children[1].op == "const":
        node, zero = node.children[0], int(node.children[1].value)
    if node.op != "cast":
        return None
    leaf = node.children[0]
    if leaf.op == "expand":
        leaf = leaf.children[0]
    if leaf.op != "leaf" or str(leaf.dtype) not in ("int8", "uint8"):
        return None
    return leaf, zero


def _code_range(node: Node) -> tuple[int, int] | None:
    """The values ``node`` can take if it is an 8-bit code (``cast(leaf) [- zero point]``)."""
    operand = code_operand(node)
    if operand is None:
        return None
    leaf, zero = operand
    low = -128 if str(leaf.dtype) == "int8" else 0
    return low - zero, low + 255 - zero


def _clamp_free(message: Node) -> tuple[Node, tuple[int, int]] | None:
    """``(per-edge code, interval)`` when the message has one ``requantize_product`` and
    edges whose code lies in the interval never reach its clamp (``clamp_free_codes``)."""

    def products(node: Node) -> list[Node]:
        found = [node] if node.op == "requantize_product" else []
        return found + [p for child in node.children for p in products(child)]

    found = products(message)
    if len(found) != 1:
        return None
    a, b = found[0].children
    ranges = _code_range(a), _code_range(b)
    if None in ranges or math.prod(a.shape) != 1:
        return None
    attrs = found[0].attrs
    fixed = FixedPoint(attrs["multipliers"], attrs["shift"])
    free = clamp_free_codes(fixed, attrs["zero_point"], attrs["qmin"], attrs["qmax"], *ranges)
    return None if free is None else (a, free)


class _Emitter:
    """TIR of the message at one feature index; ``high`` says which half of the row the
    feature is in (the nibble packed leaves are read from), ``clamp=False`` that the edge's
    ``requantize_product`` cannot reach its clamp."""

    def __init__(
        self,
        leaves: list[Leaf],
        buffers,
        indices,
        k,
        high: bool = False,
        clamp: bool = True,
        aggregate: tirx.PrimExpr | None = None,
    ):
        self.leaves, self.buffers, self.indices, self.k = leaves, buffers, indices, k
        self.high, self.clamp, self.aggregate = high, clamp, aggregate

    def value(self, node: Node, index: tuple) -> tirx.PrimExpr:
        if node.op == "aggregate":
            return self.aggregate
        if node.op == "leaf":
            leaf, buf = self.leaves[node.leaf], self.buffers[node.leaf]
            flat = _flat(index, leaf.shape)
            if leaf.packed:  # same shape as the message: ``flat`` is the feature index
                byte = flat - packed_width(leaf.width) if self.high else flat
                return unpack_value(buf[self.indices[self.k], byte], leaf.dtype, self.high)
            if leaf.kind == "gather":
                return _element(buf, leaf, self.indices[self.k], flat)
            if leaf.kind == "edge":
                return _element(buf, leaf, self.k, flat)
            return buf[flat]
        if node.op == "const":
            return tirx.const(node.value, node.dtype)
        if node.op == "expand":
            kept = tuple(i for a, i in enumerate(index) if a not in node.axes)
            return self.value(node.children[0], kept)
        children = [self.value(c, _broadcast(index, node.shape, c.shape)) for c in node.children]
        if node.op == "cast":
            if tvm.DataType(node.dtype).bits > tvm.DataType(str(children[0].ty)).bits:
                return widened(children[0], node.dtype)
            return tirx.Cast(node.dtype, children[0])
        if node.op == "add":
            return children[0] + children[1]
        if node.op == "subtract":
            return children[0] - children[1]
        if node.op == "multiply":
            return children[0] * children[1]
        if node.op == "maximum":
            return _maximum(*children)
        if node.op == "requantize_product":
            a = node.attrs
            fixed = FixedPoint(a["multipliers"], a["shift"])
            code = node.children[1]
            b, b_zero = children[1], 0
            if code.op == "subtract" and code.children[1].op == "const":  # code - zero point
                b = self.value(code.children[0], _broadcast(index, node.shape, code.shape))
                b_zero = int(code.children[1].value)
            return requantize_product_value(
                children[0],
                b,
                fixed,
                a["zero_point"],
                a["qmin"],
                a["qmax"],
                node.dtype,
                b_zero,
                self.clamp,
                a.get("centered", False),
                T.bind,
            )
        if node.op == "requantize":
            a = node.attrs
            count = len(a["zero_points"])
            bias = children[count] if len(children) > count else None
            return requantize_value(
                children[:count],
                a["zero_points"],
                FixedPoint(a["multipliers"], a["shift"]),
                a["zero_point"],
                a["qmin"],
                a["qmax"],
                node.dtype,
                bias,
                T.bind,
            )
        raise ValueError(f"unsupported message op {node.op!r}")


@dataclass(frozen=True)
class FeatureLoop:
    """Features ``start .. start + extent`` of one pass over a source row. ``parts`` are the
    (offset, high nibble) of the features one iteration writes: with packed leaves, each byte
    read feeds feature ``b`` (low nibble) and feature ``b + H`` (high nibble). An ``overlap``
    loop is a row's short tail run as one whole vector ending at the row's end: its first
    ``overlap`` lanes belong to the loop before and add 0, into their own accumulator."""

    start: int
    extent: int
    vectorized: bool
    parts: tuple[tuple[int, bool], ...]
    overlap: int = 0


@dataclass(frozen=True)
class FeaturePass:
    """The row's features summed in one pass over its edges: ``features`` ranges, read from
    ``columns`` of the gathered rows (bytes of packed ones, two features each)."""

    features: tuple[tuple[int, int], ...]
    columns: tuple[int, int]
    loops: tuple[FeatureLoop, ...]


def _span_loops(begin: int, extent: int, parts, overlap_from: int | None) -> list[FeatureLoop]:
    """Loops over ``extent`` features from ``begin``: whole vectors, then the rest as one whole
    vector ending at the span's end when it can start at or after ``overlap_from`` (41
    classes = 32 + 16 lanes of which 9 count: twice as fast as a 9-lane vector), else as a
    short vector (never a scalar loop)."""
    body, rest = extent - extent % VECTOR, extent % VECTOR
    loops = [FeatureLoop(begin, body, False, parts)] if body else []
    end = begin + extent
    if rest and overlap_from is not None and end - VECTOR >= overlap_from:
        loops.append(FeatureLoop(end - VECTOR, VECTOR, True, parts, VECTOR - rest))
    elif rest:
        loops.append(FeatureLoop(begin + body, rest, True, parts))
    return loops


def _feature_passes(width: int, leaves: list[Leaf]) -> list[FeaturePass]:
    """The passes over a row's edges and the feature loops of each: ``CHUNK`` features a
    pass (packed: ``CHUNK / 2`` bytes, byte ``b`` feeding features ``b`` and ``b + H``)."""
    passes = []
    if any(leaf.packed for leaf in leaves):
        half = packed_width(width)
        pairs = width - half  # bytes holding two features; an odd width's last holds one
        for start in range(0, max(pairs, 1), CHUNK // 2):
            end = min(pairs, start + CHUNK // 2)
            loops = _span_loops(start, end - start, ((0, False), (half, True)), None)
            features = ((start, end), (start + half, end + half))
            passes.append(FeaturePass(features, (start, end), tuple(loops)))
        if width % 2:
            last = passes[-1]
            loops = last.loops + tuple(_span_loops(pairs, 1, ((0, False),), None))
            features = (*last.features, (pairs, pairs + 1))
            passes[-1] = FeaturePass(features, (last.columns[0], half), loops)
        return passes
    for start in range(0, width, CHUNK):
        end = min(width, start + CHUNK)
        loops = _span_loops(start, end - start, ((0, False),), 0)
        passes.append(FeaturePass(((start, end),), (start, end), tuple(loops)))
    return passes


def _accumulate(message: Node, leaves, buffers, indices, k, feature_pass, acc, tail, clamp):
    """Add edge ``k``'s message to the row sums ``acc`` (an overlapping tail's lanes to
    ``tail``), feature by feature."""
    shape = message.shape
    for loop in feature_pass.loops:
        with (T.vectorized if loop.vectorized else T.serial)(loop.extent) as jj:
            for offset, high in loop.parts:
                emitter = _Emitter(leaves, buffers, indices, k, high, clamp)
                j = jj + loop.start + offset
                term = emitter.value(message, _unflat(j, shape))
                if loop.overlap:
                    zero = tirx.const(0, tail.dtype)
                    term = tirx.Select(jj >= loop.overlap, term, zero)
                    T.buffer_store(tail, tail[jj] + term, [jj])
                else:
                    T.buffer_store(acc, acc[j] + term, [j])


def _maximum(a: tirx.PrimExpr, b: tirx.PrimExpr) -> tirx.PrimExpr:
    """``max(a, b)``; of a narrowed clamped code and a constant (ReLU on a code), taken
    before the narrowing, so that a wider reader can skip the round trip (``widened``)."""
    inner = widened(a, "int64")
    if isinstance(b, tirx.IntImm) and not isinstance(inner, tirx.Cast):
        return tirx.Cast(str(a.ty), tirx.max(inner, tirx.const(b.value, str(inner.ty))))
    return tirx.max(a, b)


def _element(buf, leaf: Leaf, row, flat) -> tirx.PrimExpr:
    """Element ``flat`` of row ``row`` of a gather or edge leaf; a leaf of one value per node
    or edge (shape ``()``) is read as the 1-D tensor it is."""
    return buf[row, flat] if leaf.shape else buf[row]


def _prefetch_sources(leaves: list[Leaf], buffers, indices, ahead, feature_pass, width):
    """Hint the CPU to load edge ``ahead``'s source rows: the cache lines of the pass's
    columns (whole rows for leaves of another width, in the first pass), up to
    ``PREFETCH_LINES`` of each row. Sources are scattered over the
    node table, so hardware prefetchers cannot guess the next row: without the hint each edge
    waits for its own row to arrive."""
    for leaf, buf in zip(leaves, buffers, strict=True):
        if leaf.kind != "gather":
            continue
        bits = tvm.DataType(buf.dtype).bits
        row_bytes = (packed_width(leaf.width) if leaf.packed else leaf.width) * bits // 8
        if leaf.width != width:
            if feature_pass.columns[0]:
                continue
            first, end = 0, row_bytes
        else:
            start, stop = feature_pass.columns
            first, end = start * bits // 8, min(math.ceil(stop * bits / 8), row_bytes)
        for offset in _line_offsets(first, end, row_bytes):
            address = tirx.address_of(_element(buf, leaf, indices[ahead], offset * 8 // bits))
            # llvm.prefetch(address, read, high temporal locality, data cache)
            T.evaluate(tirx.call_intrin("void", "tirx.prefetch", address, 0, 3, 1))


def _line_offsets(first: int, end: int, row_bytes: int) -> list[int]:
    """Byte offsets, within a row, that touch every cache line of its bytes ``first ..
    end`` (the first ``PREFETCH_LINES`` lines of the row): one per 64 bytes, and the last
    byte of a row read in one pass that is not a whole number of lines (a 41-byte row
    straddles two lines at 40 of the 64 places it can start)."""
    offsets = [o for o in range(first, end, CACHE_LINE) if o < PREFETCH_LINES * CACHE_LINE]
    whole_row = first == 0 and end == row_bytes <= PREFETCH_LINES * CACHE_LINE
    if whole_row and row_bytes % CACHE_LINE and end - 1 > offsets[-1]:
        offsets.append(end - 1)
    return offsets


def _finisher(leaves, buffers, indices, epilogue: Node | None, shape: tuple[int, ...]):
    """``finish(total, j)``: feature ``j``'s row sum ``total`` through the epilogue, if any."""

    def finish(total: tirx.PrimExpr, j: tirx.PrimExpr) -> tirx.PrimExpr:
        if epilogue is None:
            return total
        emitter = _Emitter(leaves, buffers, indices, None, aggregate=total)
        return emitter.value(epilogue, _unflat(j, shape))

    return finish


def _lookup_row(lookup: Lookup, table, leaves, buffers, indices, edges, out, vi, epilogue, shape):
    """Row ``vi`` by table lookup (``dqc.kernels.spmm_lookup``), through the epilogue."""
    begin, end, e = edges
    width = math.prod(shape)
    whole_row = FeaturePass(((0, width),), (0, width), ())

    def edge_code(k: tirx.PrimExpr) -> tirx.PrimExpr:
        """Edge ``k``'s row of the table (the only one, 0, without an edge leaf)."""
        if lookup.edge is None:
            return tirx.const(0, "int8")
        return _element(buffers[lookup.edge], leaves[lookup.edge], k, tirx.const(0, "int64"))

    finish = _finisher(leaves, buffers, indices, epilogue, shape)

    def prefetch(k: tirx.PrimExpr) -> None:
        ahead = tirx.min(k + PREFETCH_EDGES, e - 1)
        _prefetch_sources(leaves, buffers, indices, ahead, whole_row, width)

    def store(total: tirx.PrimExpr, j: tirx.PrimExpr) -> None:
        T.buffer_store(out, finish(total, j), [vi, j])

    lookup_row(
        table,
        edge_code,
        buffers[lookup.gather],
        indices,
        (begin, end),
        width,
        lookup.correction,
        prefetch,
        store,
        lookup.nibbles,
    )


def _row_pass(message, leaves, buffers, indices, free, feature_pass, edges, out, vi, sums):
    """Sum the pass's features of row ``vi`` over its edges ``begin .. end`` (of ``e``) in
    ``sums`` = ``(dtype, epilogue)`` and write them to ``out``, through the epilogue if any.
    Edges outside, features inside: each source row's part is read once per pass, and the
    feature loop (contiguous, fixed width) vectorizes."""
    begin, end, e = edges
    width = math.prod(message.shape)
    sum_dtype, epilogue = sums
    # The sums live in stack buffers that LLVM keeps in registers (the pass's elements).
    acc = T.decl_buffer((width,), sum_dtype, scope="global")
    tail = T.decl_buffer((VECTOR,), sum_dtype, scope="global")
    for first, stop in feature_pass.features:
        with T.serial(first, stop) as j:
            T.buffer_store(acc, tirx.const(0, sum_dtype), [j])
    with T.serial(VECTOR) as j:
        T.buffer_store(tail, tirx.const(0, sum_dtype), [j])
    with T.serial(begin, end) as k:
        ahead = tirx.min(k + PREFETCH_EDGES, e - 1)
        _prefetch_sources(leaves, buffers, indices, ahead, feature_pass, width)
        edge = (message, leaves, buffers, indices, k, feature_pass, acc, tail)
        if free is None:
            _accumulate(*edge, clamp=True)
        else:  # two copies of the feature loops: without and with the clamp
            code, (low, high) = free
            zeros = (tirx.const(0, "int64"),) * len(code.shape)
            value = _Emitter(leaves, buffers, indices, k).value(code, zeros)
            with T.If(tirx.all(value >= low, value <= high)):
                with T.Then():
                    _accumulate(*edge, clamp=False)
                with T.Else():
                    _accumulate(*edge, clamp=True)

    finish = _finisher(leaves, buffers, indices, epilogue, message.shape)
    for first, stop in feature_pass.features:
        with T.serial(first, stop) as j:
            T.buffer_store(out, finish(acc[j], j), [vi, j])
    # (one overlapping loop at most: the last pass's; packed rows have none)
    for loop in feature_pass.loops:
        if loop.overlap:  # after the body: these lanes replace acc's zeros
            with T.serial(VECTOR - loop.overlap) as j:
                lane = j + loop.overlap
                column = loop.start + lane
                T.buffer_store(out, finish(tail[lane], column), [vi, column])


def spmm_csr(
    message: Node,
    leaves: list[Leaf],
    sum_dtype: str,
    index_dtype: str,
    epilogue: Node | None = None,
    lookup: Lookup | None = None,
):
    """PrimFunc ``(indptr [n+1], indices [e], *leaves, out [n, width])``, leaves flattened
    to ``[N, width]`` (packed: ``[N, ceil(width / 2)]``) / ``[E, width]`` / ``[width]``; a
    leaf of one value per node or edge is ``[N]`` / ``[E]``. Rows sum in ``sum_dtype``;
    ``out`` has the epilogue's dtype, if there is one. With ``lookup`` the messages come
    from a table, an int8 ``[lookup.table_size]`` argument before ``out``
    (``dqc.kernels.spmm_lookup``)."""
    out_dtype = sum_dtype if epilogue is None else epilogue.dtype
    width = math.prod(message.shape)
    free = _clamp_free(message)
    with IRBuilder() as ib:
        with T.prim_func(s_tir=True):
            T.func_name("dqc_spmm_csr")
            T.func_attr({"tirx.noalias": True, **({EXPLICIT_VECTORS: True} if lookup else {})})
            n, e, rows = (tirx.Var(name, "int64") for name in ("n", "e", "rows"))
            indptr = T.match_buffer(T.arg("indptr", T.handle()), (rows,), index_dtype)
            indices = T.match_buffer(T.arg("indices", T.handle()), (e,), index_dtype)
            buffers = []
            for i, leaf in enumerate(leaves):
                extent = {"gather": (n,), "edge": (e,), "channel": ()}[leaf.kind]
                row = packed_width(leaf.width) if leaf.packed else leaf.width
                shape = (*extent, row) if leaf.shape or leaf.kind == "channel" else extent
                buf = T.match_buffer(T.arg(f"leaf{i}", T.handle()), shape, leaf.dtype)
                buffers.append(buf)
            if lookup is not None:
                size = lookup.table_size
                table = T.match_buffer(T.arg("table", T.handle()), (size,), "int8")
            out = T.match_buffer(T.arg("out", T.handle()), (n, width), out_dtype)
            with T.serial(n) as i:
                with T.sblock("spmm"):
                    vi = T.axis.spatial(n, i)
                    reads = [indptr[vi : vi + 2], indices[0:e]]
                    reads += [b[tuple(slice(0, d) for d in b.shape)] for b in buffers]
                    if lookup is not None:
                        reads.append(table[0:size])
                    T.reads(*reads)
                    T.writes(out[vi, 0:width])
                    begin = tirx.Cast("int64", indptr[vi])
                    end = tirx.Cast("int64", indptr[vi + 1])
                    edges = (begin, end, e)
                    if lookup is not None:
                        rest = (out, vi, epilogue, message.shape)
                        _lookup_row(lookup, table, leaves, buffers, indices, edges, *rest)
                    else:
                        for feature_pass in _feature_passes(width, leaves):
                            row = (out, vi, (sum_dtype, epilogue))
                            parts = (message, leaves, buffers, indices, free, feature_pass)
                            _row_pass(*parts, edges, *row)

    return ib.get()
