"""dqc's pass pipeline from the imported Relax module to a module ready for ``tvm.compile``.

Phases, each a list of passes (run in order, instrumented by ``--dump-ir``):

* quantize: ``FoldQDQ`` (integer ops), ``FoldScales`` (fixed-point multipliers)
* lower: ``LowerMessagePassing`` (CSR kernels), ``CheckFiniteInput`` (NaN / Inf rows of ``x``
  flagged by the kernel that quantizes it), ``AddGraphPrep`` (``main(x, edge_index)`` builds
  its CSR), ``SparseInputMatmul`` (sparse inputs only: the first matmul skips their zeros),
  ``LegalizeOps`` with dqc's kernels, ``FuseInputRecode`` (the first matmul's input
  recode inside the kernel quantizing ``x``), ``FuseInputMatmul`` (on AMX, that quantizing
  inside the first matmul itself), ``PackInt4Weights`` (4-bit weights two
  per byte), TVM's operator fusion

* schedule: dqc's default schedule rules (``dqc.schedules``) on every kernel
* finalize: TVM's CPU dataflow lowering and memory planning
"""

from __future__ import annotations

from pathlib import Path

import tvm
from tvm import relax
from tvm.relax.backend.cpu_generic import pipeline as cpu_pipeline
from tvm.s_tir import dlight

from dqc.passes.add_graph_prep import AddGraphPrep
from dqc.passes.check_finite_input import CheckFiniteInput
from dqc.passes.fold_qdq import FoldQDQ
from dqc.passes.fold_scales import FoldScales
from dqc.passes.fuse_input_matmul import FuseInputMatmul
from dqc.passes.fuse_input_recode import FuseInputRecode
from dqc.passes.legalize import DQC_LEGALIZE_MAP
from dqc.passes.lower_message_passing import LowerMessagePassing
from dqc.passes.pack_int4_weights import PackInt4Weights
from dqc.passes.sparse_input_matmul import SparseInputMatmul
from dqc.schedules import default_rules


def quantize_passes() -> list:
    return [FoldQDQ(), FoldScales()]


def lower_passes(self_loops: str, sparse_input: bool = False) -> list:
    return [
        LowerMessagePassing(),
        CheckFiniteInput(),
        AddGraphPrep(self_loops),
        relax.transform.FoldConstant(),  # e.g. transposed weights, for the VNNI matmul
        *([SparseInputMatmul()] if sparse_input else []),
        relax.transform.LegalizeOps(customize_legalize_map=DQC_LEGALIZE_MAP),
        FuseInputRecode(),
        FuseInputMatmul(),
        relax.transform.EliminateCommonSubexpr(),  # e.g. layers quantizing the same norm alike
        relax.transform.AnnotateTIROpPattern(),
        relax.transform.FoldConstant(),
        PackInt4Weights(),  # after the last FoldConstant, which would undo it
        relax.transform.AnnotateTIROpPattern(),
        relax.transform.FuseOps(),
        relax.transform.FuseTIR(),
        relax.transform.DeadCodeElimination(),
    ]


def schedule_passes(target: tvm.target.Target) -> list:
    return [dlight.ApplyDefaultSchedule(*default_rules(target))]


def finalize_passes(target: tvm.target.Target) -> list:
    return cpu_pipeline.dataflow_lower_passes(target) + cpu_pipeline.finalize_passes(target)


PHASES = ("quantize", "lower", "schedule", "finalize")


def phase_passes(
    phase: str, target: tvm.target.Target, self_loops: str, sparse_input: bool = False
) -> list:
    """The passes of one phase; ``self_loops`` is the model's ``"add"`` / ``"remove"``,
    ``sparse_input`` whether its first matmul reads ``x`` sparsely (``dqc.sparse_input``)."""
    return {
        "quantize": quantize_passes,
        "lower": lambda: lower_passes(self_loops, sparse_input),
        "schedule": lambda: schedule_passes(target),
        "finalize": lambda: finalize_passes(target),
    }[phase]()


@tvm.instrument.pass_instrument
class DumpIR:
    """Writes the module after every pass to ``<dir>/<NNN>_<pass>.py`` (TVMScript)."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.count = 0

    def run_after_pass(self, mod: tvm.IRModule, info) -> None:
        self.count += 1
        name = info.name.replace("/", "_")
        path = self.directory / f"{self.count:03d}_{name}.py"
        path.write_text(mod.script(show_meta=False))
