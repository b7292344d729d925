"""SpMMCSR: rows in parallel, the feature axis vectorized, edges serial per row.

Schedules ``dqc_spmm_csr`` kernels (sblock ``spmm``): every lane of a vector reads the same
edge and source row, so a vector of features accumulates per edge with one contiguous load.
"""

from __future__ import annotations

from dqc.schedules.common import CPURule, has_block, split_vector, vector_lanes
from tvm import s_tir, tirx
from tvm.target import Target


class SpMMCSR(CPURule):
    def apply(self, func: tirx.PrimFunc, target: Target, tunable: bool):
        if not self.is_target_available(target) or not has_block(func, "spmm"):
            return None
        sch = s_tir.Schedule(func)
        block = sch.get_sblock("spmm")
        rows, features = sch.get_loops(block)
        sch.parallel(rows)
        split_vector(sch, features, vector_lanes(target))  # rows, [outer], vector

        return sch
