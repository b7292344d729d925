"""A ``dqc tune`` database directory and what reads it.

Layout of ``DIR``:

* ``database_workload.json`` / ``database_tuning_record.json``: meta_schedule's JSON
  database. Each workload is one dqc kernel specialized to a workload's sizes.
* ``kernels.json``: for each kernel name, the argument shapes it was specialized to (one
  entry per distinct shape bucket), so ``dqc compile --tuning-db`` can rebuild the exact
  workload a record belongs to. Matching is structural: a record only applies to a kernel
  with the same code.
* ``inputs/``: the int64 index arrays (CSR ``indptr``/``indices``, gather indices) the
  kernels read during one run of the workload. meta_schedule's runner fills arguments with
  random data, which sends CSR kernels out of bounds; these recorded arrays replace it.

Kept light (numpy and TVM only): the runner's worker processes import it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import tvm
from tvm import s_tir, tirx
from tvm.s_tir import meta_schedule as ms

KERNELS = "kernels.json"
INPUTS = "inputs"


def open_database(directory: str | os.PathLike) -> ms.database.JSONDatabase:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    return ms.database.JSONDatabase(
        path_workload=str(directory / "database_workload.json"),
        path_tuning_record=str(directory / "database_tuning_record.json"),
    )


def read_kernels(directory: str | os.PathLike) -> dict[str, list]:
    """Kernel name -> list of argument-shape lists (``None`` for scalar arguments)."""
    path = Path(directory) / KERNELS
    return json.loads(path.read_text()) if path.exists() else {}


def add_kernel_shapes(directory: str | os.PathLike, shapes: dict[str, list]) -> None:
    kernels = read_kernels(directory)
    for name, arguments in shapes.items():
        if arguments not in kernels.setdefault(name, []):
            kernels[name].append(arguments)
    (Path(directory) / KERNELS).write_text(json.dumps(kernels, indent=1) + "\n")


def specialize(func: tirx.PrimFunc, shapes: list) -> tirx.PrimFunc:
    """``func`` with every symbolic size bound from the argument ``shapes`` of one call."""
    if len(shapes) != len(func.params):
        raise ValueError(f"{len(shapes)} argument shapes for {len(func.params)} parameters")
    bindings = {}
    for param, shape in zip(func.params, shapes, strict=True):
        dims = getattr(param, "shape", None)  # buffer parameters only
        if dims is None or shape is None or all(isinstance(d, tirx.IntImm) for d in dims):
            continue
        bindings[param] = tirx.decl_buffer(
            [_bound(d, v) for v, d in zip(shape, dims, strict=True)],
            param.dtype,
            param.name,
            elem_offset=param.elem_offset,
            data_alignment=param.data_alignment,
            offset_factor=param.offset_factor,
        )
    return func.specialize(bindings) if bindings else func


def is_static(func: tirx.PrimFunc) -> bool:
    """Whether every buffer parameter of ``func`` has a constant shape."""
    return all(
        isinstance(d, tirx.IntImm) for p in func.params for d in getattr(p, "shape", ()) or ()
    )


def _bound(dim, value: int):
    """A size variable bound to ``value``; a derived size (``n + 1``) follows its variable."""
    return tirx.const(value, str(dim.ty.dtype)) if isinstance(dim, tirx.Var) else dim


def replay(trace: s_tir.Trace, func: tirx.PrimFunc) -> tirx.PrimFunc | None:
    """``func`` scheduled by ``trace`` (recorded on a specialization of it), or None when the
    trace does not apply to ``func``'s symbolic sizes (e.g. a vector tail split of a length
    that was static only in the specialization)."""
    sch = s_tir.Schedule(func)
    try:
        trace.apply_to_schedule(sch, remove_postproc=False)
    except RuntimeError:  # ScheduleError and TVM's other errors
        return None
    return sch.mod["main"].with_attr("tirx.is_scheduled", True)


def workload_module(func: tirx.PrimFunc) -> tvm.IRModule:
    """The module a kernel is tuned and looked up as."""
    return tvm.IRModule({"main": func.with_attr("global_symbol", "main")})


def records(database: ms.database.Database, mod: tvm.IRModule, limit: int = 1 << 20) -> list:
    """The measured records of ``mod``, fastest first."""
    if not database.has_workload(mod):
        return []
    return list(database.get_top_k(database.commit_workload(mod), limit))


def mean_seconds(record) -> float:
    return float(np.mean([float(s) for s in record.run_secs]))


def save_index_input(directory: str | os.PathLike, array: np.ndarray) -> None:
    """Keep ``array`` (int64) as the runner's value for arguments of its shape."""
    folder = Path(directory) / INPUTS
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{'x'.join(map(str, array.shape))}.npy"
    if not path.exists():
        np.save(path, array)


def alloc_recorded_arguments(directory: str, device, args_info: list, alloc_repeat: int) -> list:
    """meta_schedule runner hook: int64 arguments from the recorded index arrays of their
    shape (zeros when none was recorded: always in bounds), other arguments random."""
    rng = np.random.default_rng(0)
    arguments = []
    for _, dtype, shape in args_info:
        path = Path(directory) / INPUTS / f"{'x'.join(map(str, shape))}.npy"
        if dtype == "int64":
            value = np.load(path) if path.exists() else np.zeros(shape, dtype)
        elif dtype.startswith("float"):
            value = rng.standard_normal(shape).astype(dtype)
        else:
            info = np.iinfo(dtype)
            value = rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
        arguments.append(tvm.runtime.tensor(value, device))
    return [arguments] * alloc_repeat


def build_kernel(mod: tvm.IRModule, target, _params) -> tvm.runtime.Module:
    """meta_schedule builder hook: meta_schedule's default build without its import of every
    tensor intrinsic (about 30 s, over the builder's time limit; see the TVM notes)."""
    return tvm.tirx.build(mod, target=target)
