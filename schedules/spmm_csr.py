"""SpMMCSR: rows of ``dqc_spmm_csr`` kernels (sblock ``spmm``) in parallel.

Inside a row the kernel loops over edges, then over the features of the edge's source row;
that innermost loop is contiguous with a fixed width, and LLVM vectorizes it (with a scalar
tail when the width is not a multiple of the vector length).
"""

from __future__ import annotations

from dqc.schedules.common import CPURule, has_block
from tvm import s_tir, tirx
from tvm.target import Target


class SpMMCSR(CPURule):
    def apply(self, func: tirx.PrimFunc, target: Target, tunable: bool):
        if not self.is_target_available(target) or not has_block(func, "spmm"):
            return None
        sch = s_tir.Schedule(func)
        block = sch.get_sblock("spmm")
        (rows,) = sch.get_loops(block)
        sch.parallel(rows)

        return sch
