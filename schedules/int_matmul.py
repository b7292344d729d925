"""IntMatmul: the int8 x int8 -> int32 ``dqc_qmatmul`` with its fused epilogue.

Rows in parallel; for each row the reduction over ``k`` runs outside a vector of output
columns (weights are ``[K, N]``, so each step reads one contiguous row of ``b``). The row
sums of ``a`` (zero-point correction) and the epilogue (corrections plus any requantize
fused after it) run as separate parallel, vectorized passes.
"""

from __future__ import annotations

from dqc.schedules.common import CPURule, has_block, split_vector, vector_lanes
from tvm import s_tir, tirx
from tvm.target import Target


class IntMatmul(CPURule):
    def apply(self, func: tirx.PrimFunc, target: Target, tunable: bool):
        if not self.is_target_available(target) or not has_block(func, "dot"):
            return None
        sch = s_tir.Schedule(func)
        lanes = vector_lanes(target)
        if has_block(func, "qmatmul"):
            sch.compute_inline(sch.get_sblock("qmatmul"))
        dot = sch.get_sblock("dot")
        rows, cols, k = sch.get_loops(dot)
        outer, vector = split_vector(sch, cols, lanes)
        sch.reorder(*[loop for loop in (outer, k, vector) if loop is not None])
        sch.parallel(rows)
        sch.decompose_reduction(dot, k)
        for block in sch.get_child_blocks(sch.get_sblock("root")):
            name = sch.get(block).name_hint
            if name.startswith("dot"):
                continue
            loops = sch.get_loops(block)
            if name != "a_sum":
                split_vector(sch, loops[-1], lanes)
            sch.parallel(loops[0])
        return sch
