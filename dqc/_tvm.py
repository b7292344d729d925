"""The one place for names that moved between TVM releases (pinned: apache-tvm 0.27).

0.27 renamed ``tvm.tir`` to ``tvm.tirx`` / ``tvm.s_tir``, ``relax.Constant`` to
``tvm.ir.GenericConst`` (payload ``.value``), ``tvm.nd.array`` to ``tvm.runtime.tensor``,
and only accepts targets as dicts (a ``Target``, not a dict, must reach ``tvm.compile``).
"""

from __future__ import annotations

import os
from pathlib import Path


def physical_cores() -> int:
    """Cores (not SMT threads) this process may run on, from Linux's CPU topology."""
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count())
    cores = set()
    for cpu in cpus:
        topology = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            cores.add(tuple((topology / f).read_text() for f in ("physical_package_id", "core_id")))
        except OSError:
            cores.add((cpu,))
    return max(len(cores), 1)


# TVM sizes its thread pool once, at first use, to half the logical CPUs unless told
# otherwise (it assumes two SMT threads per core): on a 2-vCPU machine without SMT that is one
# thread. dqc asks for one thread per physical core unless the user chose a number.
if "TVM_NUM_THREADS" not in os.environ and "OMP_NUM_THREADS" not in os.environ:
    os.environ["TVM_NUM_THREADS"] = str(physical_cores())

import numpy as np  # noqa: E402
import tvm  # noqa: E402
from tvm.sym.analyzer import Analyzer  # noqa: E402  (was tvm.arith.Analyzer)

Constant = tvm.ir.GenericConst
__all__ = [
    "Analyzer",
    "Constant",
    "aligned",
    "constant_value",
    "is_constant",
    "make_target",
    "tensor",
    "to_numpy",
]


def is_constant(expr) -> bool:
    return isinstance(expr, Constant)


def constant_value(expr) -> np.ndarray:
    """NumPy value of a Relax constant."""
    return expr.value.numpy()


ALIGNMENT = 64  # bytes: what TVM's kernels assume of every tensor they are given


def aligned(array: np.ndarray) -> np.ndarray:
    """``array`` in memory that starts on an ``ALIGNMENT``-byte boundary, as torch allocates
    tensors (a copy when it does not already): what TVM takes without copying."""
    return array if array.ctypes.data % ALIGNMENT == 0 else _aligned_copy(array)


def _aligned_copy(array: np.ndarray) -> np.ndarray:
    raw = np.empty(array.nbytes + ALIGNMENT, np.uint8)
    start = -raw.ctypes.data % ALIGNMENT
    out = raw[start : start + array.nbytes].view(array.dtype).reshape(array.shape)
    out[...] = array
    return out


def tensor(array: np.ndarray):
    """A TVM runtime tensor over ``array``'s memory when it is C-contiguous, 64-byte aligned
    and writable (no copy: large graphs cost nothing to pass in), else over an aligned copy."""
    array = np.ascontiguousarray(array)
    if array.size == 0:
        return tvm.runtime.tensor(array)
    if array.ctypes.data % ALIGNMENT or not array.flags.writeable:
        array = _aligned_copy(array)
    return tvm.runtime.from_dlpack(array)


def to_numpy(value) -> np.ndarray:
    """A NumPy array over a TVM runtime tensor's memory (DLPack: no copy; the array keeps the
    tensor alive). ``Tensor.numpy()`` copies, and on Cora's 76 KB of logits that copy cost
    about 60 us of a 1 ms ``predict``."""
    return np.from_dlpack(value)


def make_target(spec: dict) -> tvm.target.Target:
    return tvm.target.Target(spec)
