"""Matmul: ``dqc_qmatmul`` (int8 x int8 -> int32, block ``dot``) and float matmuls (block
``matmul``), with whatever elementwise epilogue was fused after them.

Rows in parallel; the weights are ``[K, N]``, so with the reduction over ``k`` outside a
vector of output columns each step reads one contiguous row of the weights. Column counts
no full vector divides (e.g. 41 classes, or 146 = 9 x 16 + 2 hidden channels) keep ``k``
outside the whole column loop for LLVM to vectorize with a tail: a narrower explicit vector
(2 lanes for 146) runs many times slower.
The int8 row sums (zero-point correction) and the epilogue run as parallel passes.
"""

from __future__ import annotations

from dqc.schedules.common import CPURule, has_block, split_vector, static_extent, vector_lanes
from tvm import s_tir, tirx
from tvm.target import Target

MATMUL_BLOCKS = ("dot", "matmul")


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
