"""``dqc compile``: a trained checkpoint to ``out/model.so`` and ``out/dqc.json``.

Stages: load the checkpoint -> freeze (inference graph with explicit quantize/dequantize)
-> ``torch.export`` with symbolic node and edge counts -> Relax import with dqc's converters
-> dqc's pipeline (``dqc.pipeline``) -> ``tvm.compile`` -> ``export_library``.

An ONNX model from ``dqc export-onnx`` enters through TVM's ONNX frontend instead
(``dqc.frontend.onnx_import``) and meets the same pipeline; its checkpoint, for the parity
report, is rebuilt from the file (``dqc.onnx_checkpoint``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import onnx
import tvm
from tvm import relax

from dqc import __version__, relax_ops  # noqa: F401  (registers dqc's Relax ops)
from dqc._tvm import constant_value, is_constant
from dqc.checkpoint import load_checkpoint
from dqc.frontend.export import GraphBounds, export_program, import_program
from dqc.frontend.freeze import SELF_LOOPS, freeze
from dqc.frontend.onnx_import import import_onnx
from dqc.graph_prep import accumulator_in_degree_bound
from dqc.models import quantization_points
from dqc.onnx_checkpoint import recover_checkpoint
from dqc.onnx_runtime import read_metadata
from dqc.passes.apply_tuning_records import ApplyTuningRecords
from dqc.passes.check_finite_input import ATTR as NON_FINITE_ROWS
from dqc.pipeline import PHASES, DumpIR, phase_passes
from dqc.sparse_input import use_sparse_input
from dqc.targets import cross_linker, resolve_target

MANIFEST = "dqc.json"
LIBRARY = "model.so"
CHECKPOINT = "checkpoint.pt"

FORMAT = "dqc-artifact"
VERSION = 1


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def constant_bytes(mod: tvm.IRModule) -> int:
    """Bytes of the distinct constants (weights, per-channel terms) the Relax functions hold."""
    seen: dict[int, int] = {}

    def visit(expr) -> None:
        if is_constant(expr) and isinstance(expr.value, tvm.runtime.Tensor):
            seen[expr.__hash__()] = constant_value(expr).nbytes

    for func in mod.functions.values():
        if isinstance(func, relax.Function):
            relax.analysis.post_order_visit(func, visit)
    return sum(seen.values())


def _quiet(stage: str) -> None:
    pass


def _import(checkpoint: Path, output: Path, bounds: GraphBounds, quantized: bool, stage):
    """The checkpoint (or dqc ONNX file) as an imported Relax module: ``(mod, checkpoint,
    quantized)``. Writes the checkpoint the artifact's parity checks use into ``output``."""
    stage(f"load {checkpoint}")
    if checkpoint.suffix == ".onnx":
        metadata = read_metadata(checkpoint)
        if not quantized and metadata["dqc.scheme"] != "fp32":
            raise ValueError(f"{checkpoint}: an ONNX model compiles as exported; no FP32 twin")
        ckpt = load_checkpoint(recover_checkpoint(checkpoint, output / CHECKPOINT))
        stage("import into Relax with TVM's ONNX frontend")
        mod = import_onnx(onnx.load(str(checkpoint)), ckpt.config.in_channels)
        return mod, ckpt, metadata["dqc.scheme"] != "fp32"
    ckpt = load_checkpoint(checkpoint)
    quantized = quantized and ckpt.config.scheme != "fp32"
    frozen = freeze(ckpt.model, ckpt.config.arch, quantized)
    graph_level = ckpt.config.task == "graph"
    counts = "num_nodes, num_edges" + (", num_graphs" if graph_level else "")
    stage(f"export with torch.export (symbolic {counts})")
    program = export_program(frozen, ckpt.config.in_channels, bounds, graph_level)
    stage("import into Relax")
    mod = import_program(program)
    shutil.copyfile(checkpoint, output / CHECKPOINT)  # for parity checks against the model
    return mod, ckpt, quantized


def _input_spec(config) -> dict:
    spec = {
        "x": {"dtype": "float32", "shape": ["num_nodes", config.in_channels]},
        "edge_index": {"dtype": "int64", "shape": [2, "num_edges"]},
    }
    if config.task == "graph":  # the runtime builds graph_ptr from PyG's batch vector
        spec["batch"] = {"dtype": "int64", "shape": ["num_nodes"], "sorted": True}
    return spec


def lowered_module(
    checkpoint: str | os.PathLike,
    target: str | dict | None = None,
    quantized: bool = True,
    sparse_input: str = "auto",
) -> tuple[tvm.IRModule, tvm.target.Target]:
    """``checkpoint`` through dqc's passes up to, not including, scheduling: the kernels the
    tuner searches schedules for, as ``dqc compile`` would see them."""
    spec, _ = resolve_target(target)
    tvm_target = tvm.target.Target(spec)
    with tempfile.TemporaryDirectory() as tmp:
        mod, ckpt, quantized = _import(
            Path(checkpoint), Path(tmp), GraphBounds(), quantized, _quiet
        )
    scheme = ckpt.config.scheme
    sparse = quantized and use_sparse_input(sparse_input, scheme, ckpt.training, tvm_target)
    with tvm_target, tvm.transform.PassContext(opt_level=3):
        for phase in PHASES[: PHASES.index("schedule")]:
            passes = phase_passes(phase, tvm_target, SELF_LOOPS[ckpt.config.arch], sparse)
            mod = tvm.transform.Sequential(passes)(mod)
    return mod, tvm_target


def compile_checkpoint(
    checkpoint: str | os.PathLike,
    output: str | os.PathLike,
    target: str | dict | None = None,
    bounds: GraphBounds | None = None,
    quantized: bool = True,
    dump_ir: str | os.PathLike | None = None,
    log: Callable[[str], None] = _quiet,
    tuning_db: str | os.PathLike | None = None,
    sparse_input: str = "auto",
) -> Path:
    """Compile ``checkpoint`` (a ``model.pt``, or a ``.onnx`` from ``dqc export-onnx``) into
    ``output`` (created); returns the manifest's path.

    ``quantized=False`` compiles the same weights as a float program (dqc's FP32 baseline).
    ``tuning_db`` is a ``dqc tune`` database: kernels it holds records for get their best
    tuned schedule, the others dqc's default ones. ``sparse_input`` (``auto``, ``on``,
    ``off``) picks the first matmul's kernel (``dqc.sparse_input``). ``log`` receives one
    line per stage.
    """
    checkpoint, output = Path(checkpoint), Path(output)
    bounds = bounds or GraphBounds()

    spec, profile = resolve_target(target)
    linker = cross_linker(spec)  # before the work: a missing cross compiler fails at once
    tvm_target = tvm.target.Target(spec)
    start = time.perf_counter()

    def stage(text: str) -> None:
        log(f"[{time.perf_counter() - start:6.1f}s] {text}")

    output.mkdir(parents=True, exist_ok=True)
    mod, ckpt, quantized = _import(checkpoint, output, bounds, quantized, stage)
    config = ckpt.config
    sparse = quantized and use_sparse_input(sparse_input, config.scheme, ckpt.training, tvm_target)
    if sparse:
        stage("sparse input: the first matmul multiplies only the nonzero features")
    instruments = [DumpIR(dump_ir)] if dump_ir else []
    tuned = None
    with tvm_target, tvm.transform.PassContext(opt_level=3, instruments=instruments):
        for phase in PHASES:
            if phase == "schedule" and tuning_db is not None:
                stage(f"apply tuned schedules from {tuning_db}")
                tuned = ApplyTuningRecords(tuning_db)
                mod = tuned(mod)
                stage(tuned.summary())
            stage(f"passes: {phase}")
            mod = tvm.transform.Sequential(
                phase_passes(phase, tvm_target, SELF_LOOPS[config.arch], sparse)
            )(mod)

        weight_bytes = constant_bytes(mod)
        flags_output = (mod["forward"].attrs or {}).get(NON_FINITE_ROWS)
        stage(f"codegen for {json.dumps(spec)}")
        executable = tvm.compile(mod, tvm_target, relax_pipeline=None)
    stage(f"export {output / LIBRARY}")
    fcompile = tvm.support.cc.cross_compiler(linker) if linker else None
    executable.export_library(str(output / LIBRARY), fcompile=fcompile)
    qparams = {key: q.qparams() for key, q in quantization_points(ckpt.model).items()}
    messages = [qp for (_, role), qp in qparams.items() if role == "message"]
    rows = "num_graphs" if config.task == "graph" else "num_nodes"
    outputs = {"logits": {"dtype": "float32", "shape": [rows, config.out_channels]}}
    if flags_output is not None:  # the binary flags rows of x holding NaN / Inf itself
        outputs["non_finite_rows"] = {
            "dtype": "int8",
            "shape": ["num_nodes"],
            "index": int(flags_output),
        }
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "dqc_version": __version__,
        "tvm_version": tvm.__version__,
        "target": spec,
        "profile": profile,
        "library": LIBRARY,
        "dataset": ckpt.dataset,
        "arch": config.arch,
        "scheme": config.scheme if quantized else "fp32",
        "trained_scheme": config.scheme,
        "self_loops": SELF_LOOPS[config.arch],
        "sparse_input": sparse,
        "task": config.task,
        "inputs": _input_spec(config),
        "outputs": outputs,
        "checks_node_ids": True,  # dqc.kernels.graph_prep stops on an id outside [0, N)
        "bounds": {
            "max_nodes": bounds.max_nodes,
            "max_edges": bounds.max_edges,
            "max_in_degree": accumulator_in_degree_bound(max(q.bits for q in messages))
            if quantized
            else None,
        },
        "constant_bytes": weight_bytes,
        "tuning": tuned.report() if tuned else None,
        "quantization": [
            {"layer": layer, "role": role, **q.to_dict()} for (layer, role), q in qparams.items()
        ]
        if quantized
        else [],
        "checkpoint": {
            "file": CHECKPOINT,
            "source": str(checkpoint),
            "sha256": file_sha256(checkpoint),
        },
    }
    path = output / MANIFEST
    path.write_text(json.dumps(manifest, indent=1) + "\n")
    stage(f"wrote {path}")
    return path
