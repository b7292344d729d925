"""The search spaces ``dqc tune`` explores with meta_schedule: dqc's default schedules with
their knobs sampled instead of fixed.

TVM's stock schedule rules know nothing about CSR kernels, and meta_schedule's generic ones
reject their data-dependent edge loops, so the space of each kernel family is written here:

* CSR aggregation (``spmm`` rows): rows per parallel task and the unroll budget of the loops
  inside a row (the edges and the fixed-width feature loop).
* Elementwise kernels (quantize, requantize, fused epilogues, gathers): vector length of the
  innermost axis, iterations per parallel task and unroll budget.

Every knob is drawn with ``sample_categorical``, so a tuning record's trace holds the chosen
values and replays on the kernel with symbolic sizes (``dqc.passes.apply_tuning_records``).
Hand-written kernels with their own loop nests (the VNNI/sdot/AVX2 matmuls, graph preparation,
the edge softmax, the CSR kernels that look their messages up in a table) have no space and
keep their default schedules.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from dqc.schedules.common import vector_lanes
from dqc.schedules.elementwise import elementwise_blocks, schedule_elementwise
from dqc.schedules.spmm_csr import is_spmm, schedule_rows
from tvm import s_tir, tirx
from tvm.target import Target

from dqc.kernels.spmm_lookup import EXPLICIT_VECTORS

GRAINS = (1, 4, 16, 64)
UNROLL_STEPS = (0, 16, 64, 256)
VECTOR_FACTORS = (1, 2, 4)  # multiples of half the native int32 vector


def choose(sch: s_tir.Schedule, choices: Sequence[int]) -> int:
    """One of ``choices``, uniformly, recorded in the schedule's trace."""
    decision = sch.sample_categorical(list(choices), [1.0 / len(choices)] * len(choices))
    return int(sch.get(decision))


def search_space(func: tirx.PrimFunc, target: Target) -> Callable[[s_tir.Schedule], None] | None:
    """The space of ``func``'s schedules, as a function that samples one into a schedule
    of ``func``; None when dqc has no space for it (the default schedule stays)."""
    if target.kind.name != "llvm" or EXPLICIT_VECTORS in (func.attrs or {}):
        return None
    if is_spmm(func):
        return lambda sch: schedule_rows(sch, choose(sch, GRAINS), choose(sch, UNROLL_STEPS))
    if elementwise_blocks(s_tir.Schedule(func)) is None:
        return None
    half = max(1, vector_lanes(target) // 2)

    def elementwise(sch: s_tir.Schedule) -> None:
        lanes = half * choose(sch, VECTOR_FACTORS)
        grain, unroll = choose(sch, GRAINS), choose(sch, UNROLL_STEPS)
        schedule_elementwise(sch, elementwise_blocks(sch), lanes, grain, unroll)

    return elementwise
