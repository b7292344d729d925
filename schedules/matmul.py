"""Matmul: ``dqc_qmatmul`` (int8 x int8 -> int32, block ``dot``) and float matmuls (block
``matmul``), with whatever elementwise epilogue was fused after them.

Rows in parallel; the weights are ``[K, N]``, so with the reduction over ``k`` outside a
vector of output columns each step reads one contiguous row of the weights. Float matmuls
whose columns split into whole vectors compute tiles of rows at once (``register_tile``).
Column counts no full vector divides (e.g. 41 classes, or 146 = 9 x 16 + 2 hidden
channels) keep ``k`` outside the whole column loop for LLVM to vectorize with a tail: a
narrower explicit vector (2 lanes for 146) runs many times slower.
The int8 row sums (zero-point correction) and the epilogue run as parallel passes.
"""

from __future__ import annotations

from dqc.schedules.common import CPURule, has_block, split_vector, static_extent, vector_lanes
from tvm import s_tir, tirx
from tvm.target import Target, codegen

MATMUL_BLOCKS = ("dot", "matmul")


ROW_TILE = 4  # output rows a float matmul computes together


def _accumulator_registers(target: Target) -> int:
    """Vector registers a tile's sums may take: half of the 32 of AVX-512 and AArch64, half
    of AVX2's 16 (the rest hold the weights and the broadcast input)."""
    mtriple = str(target.attrs.get("mtriple", ""))
    wide = codegen.llvm_cpu_has_features(["avx512f"], target) or mtriple.startswith("aarch64")
    return 16 if wide else 8


def register_tile(sch: s_tir.Schedule, rows, outer, k, vector, target: Target):
    """Float matmul tiles of ``ROW_TILE`` rows by a few column vectors, the reduction over
    ``k`` outside the tile: its sums stay in registers, and each weight vector loaded serves
    all the tile's rows. One row at a time loads a weight vector per multiply-add (the Reddit
    shape's 602 -> 128 layer: 142 ms, tiled 75 ms, torch's matmul 33 ms, on 2 cores).
    Returns the loop to run in parallel."""
    budget = _accumulator_registers(target)
    vectors = static_extent(sch, outer)
    per_row = max(d for d in range(1, budget // ROW_TILE + 1) if vectors % d == 0)
    row_outer, row_inner = sch.split(rows, [None, ROW_TILE])
    col_outer, col_inner = sch.split(outer, [None, per_row])
    sch.reorder(row_outer, col_outer, k, row_inner, col_inner, vector)
    sch.unroll(row_inner)
    sch.unroll(col_inner)
    return row_outer


class Matmul(CPURule):
    def apply(self, func: tirx.PrimFunc, target: Target, tunable: bool):
        if not self.is_target_available(target):
            return None
        names = [name for name in MATMUL_BLOCKS if has_block(func, name)]
        if not names:
            return None
        sch = s_tir.Schedule(func)
        lanes = vector_lanes(target)
        if has_block(func, "qmatmul"):
            sch.compute_inline(sch.get_sblock("qmatmul"))
        block = sch.get_sblock(names[0])
        rows, cols, k = sch.get_loops(block)
        extent = static_extent(sch, cols)
        outer, vector = cols, None
        if extent is not None and (extent % lanes == 0 or extent < lanes):
            outer, vector = split_vector(sch, cols, lanes)
        if vector is None:
            sch.reorder(k, cols)
        elif names[0] == "matmul" and outer is not None:
            rows = register_tile(sch, rows, outer, k, vector, target)
        else:
            sch.reorder(*[loop for loop in (outer, k, vector) if loop is not None])
        sch.parallel(rows)
        sch.decompose_reduction(block, k)
        for child in sch.get_child_blocks(sch.get_sblock("root")):
            name = sch.get(child).name_hint
            loops = sch.get_loops(child)
            if name.startswith(names[0]) or not loops:
                continue
            if name != "a_sum":
                split_vector(sch, loops[-1], lanes)
            sch.parallel(loops[0])
        return sch
