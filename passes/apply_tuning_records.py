"""ApplyTuningRecords: give each kernel the best schedule a ``dqc tune`` database holds.

The tuner measured each kernel specialized to a workload's sizes. For every kernel of the
module with a search space (``dqc.schedules.search_space``), this pass rebuilds those
specializations from the database's ``kernels.json``, looks them up (structurally: only a
record of the very same code matches), and replays the fastest record's trace on the kernel
as compiled, with symbolic sizes: the trace holds the sampled knob values, so the schedule is
the one that was measured. The kernel is then marked scheduled, and the default rules skip
it. Kernels without a record are left to the default rules (``fallback``).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import tvm
from dqc.schedules.search_space import search_space
from tvm import tirx

from dqc.tuning_database import (
    mean_seconds,
    open_database,
    read_kernels,
    records,
    replay,
    specialize,
    workload_module,
)


@tvm.transform.module_pass(opt_level=0, name="ApplyTuningRecords")
class ApplyTuningRecords:
    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        if not (self.directory / "database_workload.json").is_file():
            raise ValueError(f"{self.directory}: not a dqc tuning database (run dqc tune)")
        self.tuned: dict[str, float] = {}  # kernel -> measured ms of the applied record
        self.fallback: list[str] = []  # searchable kernels the database has no record of
        self.fixed: list[str] = []  # kernels without a search space (hand-written loops)

    def transform_module(self, mod: tvm.IRModule, ctx) -> tvm.IRModule:
        target = tvm.target.Target.current()
        database, kernels = open_database(self.directory), read_kernels(self.directory)
        for gv, func in list(mod.functions.items()):
            if not isinstance(func, tirx.PrimFunc):
                continue
            if search_space(func, target) is None:
                self.fixed.append(gv.name_hint)
                continue
            best = self._best_record(database, func, kernels.get(gv.name_hint, []))
            if best is None:
                self.fallback.append(gv.name_hint)
                continue
            scheduled = replay(best.trace, func)
            if scheduled is None:
                self.fallback.append(gv.name_hint)
                continue
            mod[gv] = scheduled
            self.tuned[gv.name_hint] = round(1e3 * mean_seconds(best), 4)
        return mod

    @staticmethod
    def _best_record(database, func: tirx.PrimFunc, buckets: list):
        """The fastest record of the largest shape bucket that has any."""
        for shapes in sorted(buckets, key=_elements, reverse=True):
            try:
                specialized = specialize(func, shapes)
            except (ValueError, TypeError, RuntimeError):  # another kernel of this name
                continue
            best = records(database, workload_module(specialized), 1)
            if best:
                return best[0]
        return None

    def summary(self) -> str:
        fallback = ", ".join(sorted(self.fallback)) or "none"
        fixed = ", ".join(sorted(self.fixed)) or "none"
        return (
            f"tuned schedules: {len(self.tuned)} kernels; default schedules, no record: "
            f"{fallback}; default schedules, no search space: {fixed}"
        )

    def report(self) -> dict:
        return {
            "database": str(self.directory),
            "tuned": self.tuned,
            "fallback": sorted(self.fallback),
            "no_search_space": sorted(self.fixed),
        }


def _elements(shapes: list) -> int:
    return sum(math.prod(shape) for shape in shapes if shape is not None)
