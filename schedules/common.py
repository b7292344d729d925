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


def vectorize_with_tail(sch: s_tir.Schedule, loop, lanes: int) -> bool:
    """Vectorize a loop whose static extent is not a multiple of ``lanes``: partition it
    into whole vectors and one shorter vector (e.g. 1433 = 89 x 16 + 9). False if the
    extent is symbolic or under ``lanes``."""
    extent = static_extent(sch, loop)
    if extent is None or extent <= lanes or extent % lanes == 0:
        return False
    body, tail = sch.loop_partition(loop, [extent - extent % lanes, None])
    _, inner = sch.split(body, [None, lanes])
    sch.vectorize(inner)
    sch.vectorize(tail)
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
