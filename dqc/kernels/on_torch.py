"""Run a TVM kernel on torch tensors: compiled once for the host, called through DLPack.

Training uses a few fused TVM kernels in place of chains of torch elementwise passes. They
run on the calling thread: training already sizes torch's thread pool, and a second pool
(TVM's) spinning beside it would only compete for the same cores.
"""

from __future__ import annotations

import functools
import math

import torch
import tvm

from dqc._tvm import ALIGNMENT
from dqc.targets import host_target


@functools.cache
def compiled(kernel: tvm.tirx.PrimFunc):
    """``kernel`` built for this machine (once per kernel object)."""
    return tvm.compile(kernel, target=tvm.target.Target(host_target()))


def as_rows(x: torch.Tensor) -> torch.Tensor:
    """``x`` as a contiguous ``[rows, columns]`` float32 matrix on a 64-byte boundary: its first
    dimension stays the rows (one value is one row); a copy only when ``x`` is a view that does
    not meet that. Raises ValueError for anything but float32 on the CPU."""
    if x.dtype != torch.float32 or x.device.type != "cpu":
        raise ValueError(f"training kernels take float32 on the CPU, not {x.dtype} on {x.device}")
    rows = x.shape[0] if x.dim() else 1
    matrix = x.detach().contiguous().reshape(rows, math.prod(x.shape[1:]))
    return matrix if matrix.data_ptr() % ALIGNMENT == 0 else matrix.clone()


def call(kernel: tvm.tirx.PrimFunc, *args) -> None:
    """Run ``kernel`` on ``args``: torch tensors (shared, not copied; torch allocates on
    TVM's alignment) and Python scalars."""
    function = compiled(kernel)[kernel.attrs["global_symbol"]]
    function(*(tvm.runtime.from_dlpack(a) if isinstance(a, torch.Tensor) else a for a in args))
