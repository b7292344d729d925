"""The one place for names that moved between TVM releases (pinned: apache-tvm 0.27).

0.27 renamed ``tvm.tir`` to ``tvm.tirx`` / ``tvm.s_tir``, ``relax.Constant`` to
``tvm.ir.GenericConst`` (payload ``.value``), ``tvm.nd.array`` to ``tvm.runtime.tensor``,
and only accepts targets as dicts (a ``Target``, not a dict, must reach ``tvm.compile``).
"""

from __future__ import annotations

import numpy as np
import tvm
from tvm.sym.analyzer import Analyzer  # was tvm.arith.Analyzer

Constant = tvm.ir.GenericConst
__all__ = ["Analyzer", "Constant", "constant_value", "is_constant", "make_target", "tensor"]


def is_constant(expr) -> bool:
    return isinstance(expr, Constant)


def constant_value(expr) -> np.ndarray:
    """NumPy value of a Relax constant."""
    return expr.value.numpy()


def tensor(array: np.ndarray):
    """A TVM runtime tensor holding ``array``."""
    return tvm.runtime.tensor(np.ascontiguousarray(array))


def make_target(spec: dict) -> tvm.target.Target:
    return tvm.target.Target(spec)
