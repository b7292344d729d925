"""SpMMCSR: rows of ``dqc_spmm_csr`` kernels (sblock ``spmm``) in parallel.

Inside a row the kernel loops over passes of up to 64 features, then over edges, then over
the pass's features of the edge's source row; that innermost loop is contiguous with a fixed
width, and LLVM vectorizes it (a short tail runs as one whole vector too).

``schedule_rows`` takes the knobs the tuner searches (``dqc.schedules.search_space``): rows
per parallel task and the unroll budget of the loops inside a row; the default is one row
per iteration of the parallel loop and no explicit unrolling.
"""

from __future__ import annotations

from dqc.schedules.common import CPURule, has_block, parallel_chunks
from tvm import s_tir, tirx
from tvm.target import Target


def is_spmm(func: tirx.PrimFunc) -> bool:
    return has_block(func, "spmm")


def schedule_rows(sch: s_tir.Schedule, grain: int = 1, unroll: int = 0) -> None:
    (rows,) = sch.get_loops(sch.get_sblock("spmm"))
    parallel_chunks(sch, rows, grain, unroll)


class SpMMCSR(CPURule):
    def apply(self, func: tirx.PrimFunc, target: Target, tunable: bool):
        if not self.is_target_available(target) or not is_spmm(func):
            return None
        sch = s_tir.Schedule(func)
        schedule_rows(sch)
        return sch
