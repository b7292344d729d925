"""Elementwise: fused injective kernels (quantize, requantize, casts, bias) in parallel chunks
of vectors.

Inlines every producer it can, then for each remaining spatial block fuses the outer loops
into one parallel loop and vectorizes the innermost (static) axis, with a short vector for
the remainder when its extent is not a multiple of the vector length. An axis shorter than
one vector (Cora's 7 classes) is short vectors rather than a scalar loop: the int64
requantize chain of Cora's output epilogue went from 0.124 to 0.015 ms that way. Short
vectors have power-of-two lanes (``vectorize_short``).

``schedule_elementwise`` takes the knobs the tuner searches (``dqc.schedules.search_space``):
vector length, iterations per parallel task and unroll budget; the defaults are one native
vector, one outer iteration per task and no explicit unrolling.
"""

from __future__ import annotations

from dqc.schedules.common import (
    CPURule,
    parallel_chunks,
    split_vector,
    static_extent,
    vector_lanes,
    vectorize_short,
    vectorize_with_tail,
)
from tvm import s_tir, tirx
from tvm.s_tir.dlight.analysis import normalize_prim_func
from tvm.s_tir.dlight.base.common_schedules import try_inline


def elementwise_blocks(sch: s_tir.Schedule) -> list | None:
    """The spatial blocks of a plain elementwise kernel, or None for any other kernel."""
    blocks = normalize_prim_func(sch)
    if not blocks or any(b.dom_kind().strip("S") for b in blocks):
        return None
    if not all(isinstance(sch.get(b.block_rv).body, tirx.BufferStore) for b in blocks):
        return None  # hand-written kernels with loops inside blocks (scatter, softmax)
    return blocks


def schedule_elementwise(
    sch: s_tir.Schedule, blocks: list, lanes: int, grain: int = 1, unroll: int = 0
) -> None:
    for info in try_inline(sch, blocks):
        loops = sch.get_loops(info.block_rv)
        if not loops:
            continue
        extent = static_extent(sch, loops[-1])
        if extent is not None and 1 < extent < lanes and len(loops) > 1:
            vectorize_short(sch, loops[-1])  # a short axis (e.g. 7 classes): short vectors
            rest = list(loops[:-1])
        elif vectorize_with_tail(sch, loops[-1], lanes):
            rest = list(loops[:-1])
        else:
            outer, _ = split_vector(sch, loops[-1], lanes)
            rest = [*loops[:-1], outer] if outer is not None else list(loops[:-1])
        if rest:
            parallel_chunks(sch, sch.fuse(*rest) if len(rest) > 1 else rest[0], grain, unroll)


class Elementwise(CPURule):
    def apply(self, func: tirx.PrimFunc, target, tunable: bool):
        if not self.is_target_available(target):
            return None
        sch = s_tir.Schedule(func)
        blocks = elementwise_blocks(sch)
        if blocks is None:
            return None
        schedule_elementwise(sch, blocks, vector_lanes(target, widest_element_bits(sch, blocks)))
        return sch


def widest_element_bits(sch: s_tir.Schedule, blocks: list) -> int:
    """Bits of the widest element the blocks read or write: all-byte kernels (int8
    recoding) fill a vector with 64 lanes instead of 16."""
    regions = [r for b in blocks for r in (*sch.get(b.block_rv).reads, *sch.get(b.block_rv).writes)]
    return max(region.source.dtype.bits for region in regions)
