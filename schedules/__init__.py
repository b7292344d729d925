"""dqc's schedule rules for its kernels, one per file (installed as ``dqc.schedules``).

``default_rules(target)`` is the ordered list ``ApplyDefaultSchedule`` tries on each kernel:
the first rule that recognizes a PrimFunc schedules it.
"""

from __future__ import annotations

from dqc.schedules.elementwise import Elementwise
from dqc.schedules.matmul import Matmul
from dqc.schedules.search_space import search_space
from dqc.schedules.spmm_csr import SpMMCSR
from tvm.target import Target


def default_rules(target: Target) -> list:
    return [SpMMCSR(), Matmul(), Elementwise()]


__all__ = ["Elementwise", "Matmul", "SpMMCSR", "default_rules", "search_space"]
