"""Helpers shared by dqc's schedule rules."""

from __future__ import annotations

from tvm import s_tir, tirx
from tvm.s_tir.dlight.base import ScheduleRule
from tvm.target import Target, codegen


class CPURule(ScheduleRule):
    """A rule for LLVM CPU targets."""

    def is_target_available(self, target: Target) -> bool:
        return target.kind.name == "llvm"


def vector_lanes(target: Target, dtype_bits: int = 32) -> int:
    """Elements of ``dtype_bits`` in one native vector register of ``target``."""
    bits = int(codegen.llvm_get_vector_width(target))
    return max(1, bits // dtype_bits)


def static_extent(sch: s_tir.Schedule, loop) -> int | None:
    extent = sch.get(loop).extent
    return int(extent) if isinstance(extent, tirx.IntImm) else None


def has_block(func: tirx.PrimFunc, name: str) -> bool:
    """Whether ``func`` has an sblock called ``name``."""
    try:
        s_tir.Schedule(func).get_sblock(name)
    except Exception:  # TVM raises ScheduleError subclasses of TVMError
        return False
    return True


def split_vector(sch: s_tir.Schedule, loop, lanes: int):
    """Split ``loop`` into ``(outer, vector)``, ``vector`` of ``lanes`` (or the largest power
    of two dividing the extent) and vectorized. Either may be None: no vector when nothing
    divides, no outer when the whole loop is one vector."""
    extent = static_extent(sch, loop)
    width = lanes
    while extent is not None and width > 1 and extent % width:
        width //= 2
    if extent is None or width <= 1:
        return loop, None
    if extent == width:
        sch.vectorize(loop)
        return None, loop
    outer, inner = sch.split(loop, [None, width])
    sch.vectorize(inner)
    return outer, inner


def _power_of_two_pieces(extent: int) -> list[int]:
    """``extent`` as descending powers of two, e.g. 7 = [4, 2, 1]."""
    return [1 << bit for bit in reversed(range(extent.bit_length())) if extent >> bit & 1]


def _partition(sch: s_tir.Schedule, loop, lengths: list[int]) -> list:
    """``loop`` (from 0) as consecutive loops of ``lengths``. TVM's ``loop_partition``
    misplaces the parts of a loop that does not start at 0, so a loop is partitioned once."""
    return list(sch.loop_partition(loop, [*lengths[:-1], None])) if len(lengths) > 1 else [loop]


def _vectorize_pieces(sch: s_tir.Schedule, loops: list, pieces: list[int]) -> None:
    for loop, width in zip(loops, pieces, strict=True):
        if width > 1:
            sch.vectorize(loop)


def vectorize_short(sch: s_tir.Schedule, loop) -> None:
    """Vectorize a static loop shorter than a native vector as power-of-two vectors, e.g.
    7 = 4 + 2 + 1 (a single element stays scalar). LLVM 22's AArch64 backend miscompiles
    truncating stores of 3-lane vectors, ``<3 x i64>`` to ``<3 x i8>``: it stored zeros
    and dropped lanes of Cora's 7-class epilogue (fixed upstream in llvm/llvm-project#202039,
    after the pinned TVM's LLVM). Power-of-two vectors never form such a type."""
    pieces = _power_of_two_pieces(static_extent(sch, loop))
    _vectorize_pieces(sch, _partition(sch, loop, pieces), pieces)


def vectorize_with_tail(sch: s_tir.Schedule, loop, lanes: int) -> bool:
    """Vectorize a loop whose static extent is not a multiple of ``lanes``: partition it
    into whole vectors and a shorter tail of power-of-two vectors (see ``vectorize_short``),
    e.g. 1433 = 89 x 16 + 8 + 1. False if the extent is symbolic or under ``lanes``."""
    extent = static_extent(sch, loop)
    if extent is None or extent <= lanes or extent % lanes == 0:
        return False
    pieces = _power_of_two_pieces(extent % lanes)
    body, *tail = _partition(sch, loop, [extent - extent % lanes, *pieces])
    _, inner = sch.split(body, [None, lanes])
    sch.vectorize(inner)
    _vectorize_pieces(sch, tail, pieces)
    return True


def parallel_chunks(sch: s_tir.Schedule, loop, grain: int = 1, unroll: int = 0):
    """Run ``loop`` in parallel, ``grain`` consecutive iterations per parallel iteration,
    with TVM's explicit unrolling of the loops inside up to ``unroll`` steps (0: none, LLVM
    decides). Returns the loop that carries one chunk (``loop`` itself when ``grain`` is 1)."""
    inner = loop
    if grain > 1:
        loop, inner = sch.split(loop, [None, grain])
    sch.parallel(loop)
    if unroll:
        sch.annotate(inner, "pragma_auto_unroll_max_step", unroll)
        sch.annotate(inner, "pragma_unroll_explicit", 1)
    return inner
