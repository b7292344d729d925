"""Message aggregation by table lookup: each message is a function of one or two bytes.

GCN's message for edge ``k`` and feature ``j`` is ``requantize_product(a_k, h[src_k, j])``
(``dqc.fixed_point``): an 8-bit code of the edge's norm times an 8-bit code of the source's
feature, requantized. Two bytes in, one code out: a 256 x 256 table of every result (64 KB,
computed at compile time by the very function the integer reference calls) replaces the
arithmetic, and the kernel stays bit for bit the reference's program.

Per edge the kernel loads the table's row for ``a_k`` (256 bytes, four registers) and looks up
64 features at once: AVX-512 VBMI's ``vpermi2b`` indexes a 128-byte table held in two
registers by the low 7 bits of each byte, so two of them and a blend on the top bit cover the
row. Where the arithmetic spends seven instructions on 16 values (``vpmulld`` among them),
this spends seven on 64, counting the sums below.

INT4 sources are gathered two codes per byte (``dqc.kernels.pack_int4``: byte ``b`` holds
features ``b`` and ``b + H``), and a code is a nibble: the edge's row has 16 entries, stored
four times over in 64 bytes (``NIBBLE_ROW``), so one AVX-512 VBMI ``vpermb`` looks up 64
low nibbles at once (it reads six index bits, and the two above the nibble pick one of the
identical copies), and another the high nibbles after a 16-bit shift by 4: two instructions
per 128 features, from a 16 KB table that stays in L1, where arithmetic decoded and
multiplied the nibbles in int32 lanes. Without VBMI, ``vpshufb`` (AVX-512 BW: 64 bytes,
AVX2: 32) does the same within each 16-byte lane (the copies again), after an ``and``
clears the index's high bits, and on aarch64 NEON's ``tbl`` looks up 16 nibbles at a time
from the row's first copy.

GIN's message is the source's code alone, requantized to the message's scale: a table of one
row (``Lookup.edge`` None), looked up the same way. Where a graph has a hundred in-edges per
node (a 5-layer GIN on the Reddit shape: INT8 aggregation 111 -> 78 ms, INT4 142 -> 84 ms)
that replaces int64 arithmetic per value; at REDDIT-BINARY's 2.3 it changes nothing
measurable, the rows' own work dominating.

Table entries are ``code - qmin``, bytes 0 .. 255; the row's sum gets ``count * (qmin -
zero_point)`` back at the end (``correction``). The 16-bit view of 64 looked-up bytes holds
feature ``2i`` in each word's low byte and ``2i + 1`` in its high byte. Per edge the kernel
adds the words (wrapping) and the high bytes (``w >> 8``) into uint16 sums, two additions
and a shift per 64 features and no lane-crossing widening: for up to ``RUN`` edges the
high bytes' sum is exact (``257 * 255 = 65,535``), and so is the low bytes' sum, which is
the words' sum minus 256 times the high bytes' sum, modulo 2^16. Every ``RUN`` edges both
widen into int32.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from tvm import tirx
from tvm.script.ir_builder import tirx as T
from tvm.target import Target, codegen

from dqc.fixed_point import FixedPoint, requantize_product
from dqc.kernels.pack_int4 import packed_width

LANES = 64  # bytes one AVX-512 register looks up at once
RUN = 257  # edges summed in uint16 lanes before widening: entries <= 255, 257 * 255 < 2^16
TABLE_ROW = 256
NIBBLE_ROW = 64  # a packed source's table row: its 16 entries four times (vpermb's 64 lanes)
PERMUTE = "llvm.x86.avx512.vpermi2var.qi.512"  # vpermi2b / vpermt2b
PERMUTE_ONE = "llvm.x86.avx512.permvar.qi.512"  # vpermb: 6 index bits across 64 lanes
SHUFFLE = "llvm.x86.avx512.pshuf.b.512"  # vpshufb: 4 index bits within 16-byte lanes
SHUFFLE_AVX2 = "llvm.x86.avx2.pshuf.b"  # the same on 32 bytes
TABLE_LOOKUP = "llvm.aarch64.neon.tbl1.v16i8"  # tbl: 16 entries, 0 for an index past them
# Bytes each nibble instruction looks up at once.
NIBBLE_LANES = {PERMUTE_ONE: LANES, SHUFFLE: LANES, SHUFFLE_AVX2: 32, TABLE_LOOKUP: 16}
# Function attribute of kernels written in explicit vectors: no tuning space (meta_schedule
# cannot even count their operations) and nothing for LLVM's loop vectorizer to choose.
EXPLICIT_VECTORS = "dqc.explicit_vectors"


def lookup_supported(target: Target | None) -> bool:
    """Whether ``target`` has the byte permute the lookup of byte codes needs (AVX-512 VBMI:
    Ice Lake and later; not Cascade Lake, whose INT8 builds keep the arithmetic)."""
    return target is not None and bool(codegen.llvm_cpu_has_features(["avx512vbmi"], target))


def nibble_shuffle(target: Target | None) -> str | None:
    """The instruction that looks up nibbles' entries on ``target``: ``vpermb`` with AVX-512
    VBMI, ``vpshufb`` with AVX-512 BW (Skylake-SP, Cascade Lake) or on 32 bytes with AVX2
    (Haswell, Zen), NEON's ``tbl`` (16 at a time) on aarch64; all but ``vpermb`` need the
    indices' high bits cleared first. None elsewhere (the arithmetic stays)."""
    if target is None:
        return None
    if lookup_supported(target):
        return PERMUTE_ONE
    for feature, instruction in (
        ("avx512bw", SHUFFLE),
        ("avx2", SHUFFLE_AVX2),
        ("neon", TABLE_LOOKUP),
    ):
        if codegen.llvm_cpu_has_features([feature], target):
            return instruction
    return None


@dataclass(frozen=True)
class Lookup:
    """Which of the kernel's leaves index the table: ``edge`` (one code per edge: the row;
    None for messages of the source's code alone, a table of one row) and ``gather`` (the
    source's codes: the columns); ``correction`` is added to a row's sums once per edge.
    ``nibbles``: the source's codes are 4-bit, two per byte, looked up by this instruction
    (``nibble_shuffle``)."""

    edge: int | None
    gather: int
    correction: int
    nibbles: str | None = None

    @property
    def packed(self) -> bool:
        return self.nibbles is not None

    @property
    def table_size(self) -> int:
        rows = 1 if self.edge is None else TABLE_ROW
        return rows * (NIBBLE_ROW if self.packed else TABLE_ROW)


def code_values(dtype: str, packed: bool = False) -> np.ndarray:
    """The value of each byte read as ``dtype`` (256), or of each nibble decoded as ``dtype``
    (16; int8: sign-extended), in int64: the columns of a table."""
    if packed:
        nibbles = np.arange(16, dtype=np.int64)
        return (nibbles ^ 8) - 8 if dtype == "int8" else nibbles
    return np.arange(256, dtype=np.uint8).view(dtype).astype(np.int64)


def message_table(messages: np.ndarray, low: int, packed: bool = False) -> np.ndarray:
    """The flattened int8 table of ``messages`` (``[rows, columns]``, from ``code_values``
    columns), entries ``message - low`` as bytes (a packed row: its 16 entries four times)."""
    entries = messages - low
    if entries.min() < 0 or entries.max() > 255:
        raise ValueError(f"messages {messages.min()}..{messages.max()} do not fit one byte")
    if packed:
        entries = np.tile(entries, (1, NIBBLE_ROW // 16))
    return entries.astype(np.uint8).view(np.int8).reshape(-1)


def product_table(
    attrs: dict, a: tuple[str, int], b: tuple[str, int], packed: bool = False
) -> tuple[np.ndarray, int]:
    """The flattened ``[256 * 256]`` int8 table of ``requantize_product`` (its node ``attrs``)
    for every byte of the edge code ``a`` and gathered code ``b`` (each ``(dtype, zero
    point)``), entries minus ``qmin + 128``; and the per-edge correction that turns a sum of
    entries into the sum of messages (centred messages: minus the zero point too).
    ``packed``: ``b`` is a nibble (``dqc.kernels.pack_int4``), the table ``[256 * 64]``,
    each row's 16 entries four times over."""
    zero_point, qmin, qmax = attrs["zero_point"], attrs["qmin"], attrs["qmax"]
    if qmax - qmin > 255:
        raise ValueError(f"message codes {qmin}..{qmax} do not fit one byte")
    fixed = FixedPoint(attrs["multipliers"], attrs["shift"])
    rows = code_values(a[0]) - a[1]
    columns = code_values(b[0], packed) - b[1]
    codes = requantize_product(rows[:, None], columns[None, :], fixed, zero_point, qmin, qmax)
    correction = qmin - zero_point if attrs.get("centered", False) else qmin
    return message_table(codes, qmin, packed), correction


def _codes(buf, row: tirx.PrimExpr, vector: int, width: int, lanes: int = LANES):
    """Bytes ``lanes * vector ..`` of row ``row`` as int8 vector; past the row's end (a last,
    partial vector) a masked load reads zeros instead of the next row or unmapped memory
    (its mask is a constant: without masked loads, LLVM loads the lanes it keeps)."""
    count = min(lanes, width - vector * lanes)
    if count == lanes:
        value = buf[row, tirx.Ramp(vector * lanes, 1, lanes)]
    else:
        mask = tirx.Ramp(0, 1, lanes) < tirx.Broadcast(count, lanes)
        address = tirx.address_of(buf[row, vector * lanes])
        zeros = tirx.Broadcast(tirx.const(0, buf.dtype), lanes)
        value = tirx.call_llvm_intrin(
            f"{buf.dtype}x{lanes}", "llvm.masked.load", address, mask, zeros
        )
    return value if buf.dtype == "int8" else tirx.reinterpret(f"int8x{lanes}", value)


def _lookup(table, row: tirx.PrimExpr, index: tirx.PrimExpr) -> tirx.PrimExpr:
    """Entries ``table[row + index]`` of 64 byte indices, as uint16x32 (two per lane)."""

    def part(start: int) -> tirx.PrimExpr:
        return table[tirx.Ramp(row + start, 1, LANES)]

    low = tirx.call_llvm_pure_intrin(f"int8x{LANES}", PERMUTE, part(0), index, part(64))
    high = tirx.call_llvm_pure_intrin(f"int8x{LANES}", PERMUTE, part(128), index, part(192))
    upper = index < tirx.Broadcast(tirx.const(0, "int8"), LANES)  # the byte's top bit
    return tirx.reinterpret(f"uint16x{LANES // 2}", tirx.Select(upper, high, low))


def _nibble_lookup(row: tirx.PrimExpr, index: tirx.PrimExpr, shuffle: str) -> tirx.PrimExpr:
    """Entries of a packed table ``row`` at the low nibbles of ``index`` (int8 vectors of
    ``NIBBLE_LANES[shuffle]``), as a uint16 vector of half as many lanes."""
    lanes = NIBBLE_LANES[shuffle]
    if shuffle != PERMUTE_ONE:  # vpshufb and tbl give 0 for an index past 15
        index = index & tirx.Broadcast(tirx.const(15, "int8"), lanes)
    looked = tirx.call_llvm_pure_intrin(f"int8x{lanes}", shuffle, row, index)
    return tirx.reinterpret(f"uint16x{lanes // 2}", looked)


def _high_nibbles(index: tirx.PrimExpr, lanes: int) -> tirx.PrimExpr:
    """``index`` with each byte's high nibble moved to its low one (the bits above are the
    next byte's: ``vpermb`` reads two of them only to pick one of a row's identical copies,
    ``vpshufb`` and ``tbl`` none once they are cleared)."""
    words = tirx.reinterpret(f"uint16x{lanes // 2}", index)
    four = tirx.Broadcast(tirx.const(4, "uint16"), lanes // 2)
    return tirx.reinterpret(f"int8x{lanes}", words >> four)


def lookup_row(
    table,
    edge_code: Callable[[tirx.PrimExpr], tirx.PrimExpr],
    codes,
    indices,
    edges: tuple,
    width: int,
    correction: int,
    prefetch: Callable[[tirx.PrimExpr], None],
    store: Callable[[tirx.PrimExpr, int], None],
    nibbles: str | None = None,
) -> None:
    """Sum row ``begin .. end``'s looked-up messages and ``store(total, feature)`` each of
    the ``width`` sums (int32). ``edge_code(k)`` is edge ``k``'s code, ``codes`` the
    gathered ``[N, width]`` codes (``nibbles``: ``[N, ceil(width / 2)]`` bytes of two,
    looked up by that instruction), ``prefetch(k)`` hints edge ``k``'s source row."""
    begin, end = edges
    packed = nibbles is not None
    lanes = NIBBLE_LANES[nibbles] if packed else LANES  # bytes looked up at once
    columns = packed_width(width) if packed else width  # bytes of a gathered row
    vectors = math.ceil(columns / lanes)
    # The first feature of each vector of looked-up bytes: a packed vector gives two, its
    # low nibbles' features and, ``columns`` further on, its high nibbles'.
    bases = [v * lanes for v in range(vectors)]
    if packed:
        bases += [columns + v * lanes for v in range(vectors)]
    pairs = lanes // 2
    # Per looked-up vector (slot): its even and odd features' sums, and the uint16 runs
    # (words' sums, high bytes') they are widened from, each a stack buffer of ``pairs``
    # values. TVM puts a kernel buffer of 1 KB or more on the heap, allocated for every row:
    # one buffer for all slots reached that at 256 features (INT4: 146, ZINC's width).
    acc = [[T.decl_buffer((pairs,), "int32", scope="global") for _ in range(2)] for _ in bases]
    run = [[T.decl_buffer((pairs,), "uint16", scope="global") for _ in range(2)] for _ in bases]
    eight = tirx.Broadcast(tirx.const(8, "uint16"), pairs)

    def clear_runs() -> None:
        for words, highs in run:
            with T.serial(pairs) as j:
                T.buffer_store(words, tirx.const(0, "uint16"), [j])
                T.buffer_store(highs, tirx.const(0, "uint16"), [j])

    def widen() -> None:
        for (even, odd), (words, highs) in zip(acc, run, strict=True):
            with T.serial(pairs) as j:
                low = words[j] - tirx.shift_left(highs[j], tirx.const(8, "uint16"))
                T.buffer_store(even, even[j] + tirx.Cast("int32", low), [j])
                T.buffer_store(odd, odd[j] + tirx.Cast("int32", highs[j]), [j])
        clear_runs()

    for even, odd in acc:
        with T.serial(pairs) as j:
            T.buffer_store(even, tirx.const(0, "int32"), [j])
            T.buffer_store(odd, tirx.const(0, "int32"), [j])
    clear_runs()
    with T.serial(begin, end) as k:
        prefetch(k)
        code = tirx.Cast("int64", tirx.Cast("uint8", edge_code(k)))
        looked = []  # (slot in bases, uint16 vector of entries)
        for v in range(vectors):
            index = _codes(codes, indices[k], v, columns, lanes)
            if packed:
                entries = table[tirx.Ramp(code * NIBBLE_ROW, 1, lanes)]
                looked.append((v, _nibble_lookup(entries, index, nibbles)))
                high = _nibble_lookup(entries, _high_nibbles(index, lanes), nibbles)
                looked.append((vectors + v, high))
            else:
                looked.append((v, _lookup(table, code * TABLE_ROW, index)))
        for slot, entries_words in looked:
            words, highs = run[slot]
            at = tirx.Ramp(0, 1, pairs)
            T.buffer_store(words, words[at] + entries_words, [at])
            T.buffer_store(highs, highs[at] + (entries_words >> eight), [at])
        with T.If(tirx.floormod(k - begin, RUN) == RUN - 1):
            with T.Then():
                widen()
    widen()
    # Back to feature order, a slot at a time (LLVM turns the pairs into two-source
    # shuffles), so that the epilogue reads and writes contiguous lanes: a strided output
    # would be written one byte at a time. A slot stores only its own features: a packed
    # row's low slots end at its bytes (``columns``), where its high slots' features begin.
    count = tirx.Cast("int32", end - begin) * tirx.const(correction, "int32")
    for slot, base in enumerate(bases):
        low_nibbles = packed and slot < vectors
        stop = min(base + lanes, columns if low_nibbles else width)
        even, odd = acc[slot]
        ordered = T.decl_buffer((lanes,), "int32", scope="global")
        with T.serial(pairs) as i:
            T.buffer_store(ordered, even[i] + count, [2 * i])
            T.buffer_store(ordered, odd[i] + count, [2 * i + 1])
        with T.serial(stop - base) as j:
            store(ordered[j], base + j)
