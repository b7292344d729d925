"""``dqc tune``: search schedules for a model's kernels with meta_schedule, into a database
that ``dqc compile --tuning-db`` applies.

1. The model goes through dqc's passes up to scheduling; the kernels with a search space
   (``dqc.schedules.search_space``) are the tasks.
2. The default build runs once on the workload's graph; each task's argument shapes (its
   shape bucket) and the index arrays it reads are recorded into the database directory.
3. Each task, specialized to its shapes, is searched with meta_schedule (``ReplayFunc``:
   knob values drawn afresh for every candidate), built by a builder without meta_schedule's
   slow import of every tensor intrinsic (also kept out of the tuning context), and timed by
   the standard runner on the recorded index arrays.

``trials`` is the budget per run, split evenly over the tasks and counted against what the
database already holds: a second run on the same directory continues where the first
stopped (``resumed``), and only runs trials the database lacks.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tvm
from tqdm.auto import tqdm
from tvm import s_tir, tirx
from tvm.ir.utils import derived_object
from tvm.s_tir import meta_schedule as ms

from dqc.bench import workload_graph
from dqc.compiler import compile_checkpoint, lowered_module
from dqc.runtime import load
from dqc.schedules.search_space import search_space
from dqc.targets import is_cross, resolve_target, target_arch
from dqc.tuning_database import (
    add_kernel_shapes,
    alloc_recorded_arguments,
    build_kernel,
    is_static,
    mean_seconds,
    open_database,
    read_kernels,
    records,
    replay,
    save_index_input,
    specialize,
    workload_module,
)
from dqc.workloads import NODE_WORKLOADS

SPACE_CHECK_SEEDS = 16  # samples of a kernel's space that must replay on its symbolic sizes


@derived_object
class _Progress(ms.measure_callback.PyMeasureCallback):
    """Advances a progress bar by the candidates of each measured batch."""

    def __init__(self, bar: tqdm):
        self.bar = bar

    def apply(self, task_scheduler, task_id, candidates, builder_results, runner_results):
        self.bar.update(len(candidates))


def record_kernel_arguments(
    directory: Path, names: set[str], x: np.ndarray, edge_index: np.ndarray, db: Path
) -> dict[str, list]:
    """Run the build in ``directory`` once on the graph: the argument shapes of each kernel
    in ``names`` (``None`` for scalars); their int64 arrays are saved into ``db``."""
    model = load(directory)
    x, edge_index = model.check(x, edge_index)
    shapes: dict[str, list] = {}

    def record(func, symbol, before_run, ret_value, *args):
        if before_run and symbol in names and symbol not in shapes:
            shapes[symbol] = [list(a.shape) if hasattr(a, "shape") else None for a in args]
            for a in args:
                if hasattr(a, "dtype") and str(a.dtype) == "int64":
                    save_index_input(db, a.numpy())
        return 0

    vm = model._local().vm
    vm.set_instrument(record)
    try:
        vm["main"](tvm.runtime.tensor(x), tvm.runtime.tensor(edge_index))
    finally:
        vm.set_instrument(lambda *a: 0)
    return shapes


def _tunable(func: tirx.PrimFunc, specialized: tirx.PrimFunc, target) -> bool:
    """Whether ``func``'s tuned schedules can be used: its specialization has static sizes
    (none derived from data) and schedules sampled on it (a fixed set of seeds, so every run
    picks the same tasks) replay on ``func``."""
    if not is_static(specialized):
        return False
    space = search_space(specialized, target)
    for seed in range(1, SPACE_CHECK_SEEDS + 1):
        sch = s_tir.Schedule(specialized, seed=seed)
        space(sch)
        if replay(sch.trace, func) is None:
            return False
    return True


@contextlib.contextmanager
def _tensor_intrinsics_unloaded():
    """Lets ``TuneContext`` be made without its ``import tvm.s_tir.tensor_intrin``: that import
    parses every tensor intrinsic TVM has as TVMScript, 33 s in a bare process and minutes
    once torch is loaded (the parser walks the stack through every loaded module). dqc's
    search spaces tensorize nothing, so an empty module stands in while the context is made,
    and a later real import still loads the intrinsics."""
    name = "tvm.s_tir.tensor_intrin"
    if name in sys.modules:
        yield
        return
    sys.modules[name] = types.ModuleType(name)
    try:
        yield
    finally:
        del sys.modules[name]


def _context(name: str, func: tirx.PrimFunc, target: tvm.target.Target) -> ms.TuneContext:
    space = ms.space_generator.ScheduleFn(
        search_space(func, target), sch_rules=[], postprocs=[], mutator_probs={}
    )
    with _tensor_intrinsics_unloaded():
        return ms.TuneContext(
            mod=workload_module(func),
            target=target,
            space_generator=space,
            search_strategy=ms.search_strategy.ReplayFunc(),
            task_name=name,
            num_threads=1,  # the search itself is cheap; both cores stay for measuring
        )


def tune(
    checkpoint: str | os.PathLike | None,
    db: str | os.PathLike,
    workload: str = "reddit-shaped",
    trials: int = 64,
    target: str | dict | None = None,
    data_root=None,
    progress: bool = True,
    log: Callable[[str], None] = lambda line: None,
) -> dict:
    """Tune ``checkpoint``'s kernels on ``workload`` into the database ``db``; returns the
    summary ``dqc tune`` prints (``trials_run``, ``trials_in_db``, ``resumed``, per kernel)."""
    if trials < 1:
        raise ValueError(f"--trials must be at least 1, not {trials}")
    spec, _ = resolve_target(target)
    if is_cross(spec):
        raise ValueError(
            f"tuning measures every candidate on this machine, which cannot run "
            f"{target_arch(spec)} code; tune with the host target"
        )
    if workload not in NODE_WORKLOADS:
        raise ValueError(f"dqc tune runs on {', '.join(NODE_WORKLOADS)}, not {workload!r}")
    graph = workload_graph(workload, checkpoint, data_root)
    checkpoint, x, edge_index = graph.checkpoint, graph.x, graph.edge_index
    db = Path(db)
    start = time.perf_counter()

    log("lower the model to its kernels")
    mod, tvm_target = lowered_module(checkpoint, spec)
    funcs = {
        gv.name_hint: f
        for gv, f in mod.functions.items()
        if isinstance(f, tirx.PrimFunc) and search_space(f, tvm_target) is not None
    }
    database = open_database(db)
    log(f"record the shapes of {len(funcs)} kernels on {workload}")
    with tempfile.TemporaryDirectory() as tmp:
        compile_checkpoint(checkpoint, Path(tmp) / "default", spec)
        shapes = record_kernel_arguments(Path(tmp) / "default", set(funcs), x, edge_index, db)
    add_kernel_shapes(db, shapes)
    tasks = {name: specialize(funcs[name], shapes[name]) for name in sorted(shapes)}
    tasks = {name: f for name, f in tasks.items() if _tunable(funcs[name], f, tvm_target)}

    per_task = math.ceil(trials / len(tasks))
    before = {name: len(records(database, workload_module(f))) for name, f in tasks.items()}
    builder = ms.builder.LocalBuilder(f_build=build_kernel, timeout_sec=120)
    runner = ms.runner.LocalRunner(
        timeout_sec=120,
        evaluator_config=ms.runner.EvaluatorConfig(number=1, repeat=3, min_repeat_ms=20),
        f_alloc_argument=functools.partial(alloc_recorded_arguments, str(db.resolve())),
    )
    remaining = {name: max(0, per_task - count) for name, count in before.items()}
    bar = tqdm(total=sum(remaining.values()), desc="tune", unit="trial", disable=not progress)
    with bar:
        for name, func in tasks.items():
            if not remaining[name]:
                continue
            bar.set_postfix_str(name[:40])
            ms.tune_tasks(
                tasks=[_context(name, func, tvm_target)],
                task_weights=[1.0],
                work_dir=str(db),
                max_trials_global=remaining[name],
                num_trials_per_iter=min(remaining[name], 8),
                builder=builder,
                runner=runner,
                database=database,
                cost_model="random",
                measure_callbacks=[
                    *ms.measure_callback.MeasureCallback.create("default"),
                    _Progress(bar),
                ],
                task_scheduler="round-robin",
            )
    after = {name: records(database, workload_module(f)) for name, f in tasks.items()}
    return {
        "workload": workload,
        "checkpoint": str(checkpoint),
        "target": spec,
        "db": str(db),
        "kernels": {
            name: {
                "shapes": shapes[name],
                "trials": len(found),
                "best_ms": round(1e3 * mean_seconds(found[0]), 4) if found else None,
            }
            for name, found in after.items()
        },
        "tuning_seconds": round(time.perf_counter() - start, 1),
        "trials_run": sum(len(after[n]) - before[n] for n in tasks),
        "trials_in_db": sum(len(found) for found in after.values()),
        "resumed": any(before.values()),
    }


def tuning_history(
    checkpoint: str | os.PathLike, db: str | os.PathLike, target: str | dict | None = None
) -> dict[str, list[float]]:
    """Each of ``checkpoint``'s kernels the database ``db`` has records of: its measured ms,
    in the order the trials ran (all shape buckets)."""
    mod, _ = lowered_module(checkpoint, target)
    database = open_database(db)
    funcs = {gv.name_hint: f for gv, f in mod.functions.items() if isinstance(f, tirx.PrimFunc)}
    trials = database.get_all_tuning_records()
    history = {}
    for name, buckets in read_kernels(db).items():
        for shapes in buckets if name in funcs else []:
            kernel = workload_module(specialize(funcs[name], shapes))
            if database.has_workload(kernel):
                workload = database.commit_workload(kernel)
                found = [1e3 * mean_seconds(r) for r in trials if r.workload.same_as(workload)]
                history.setdefault(name, []).extend(found)
    return history
