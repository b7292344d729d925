"""``dqc bench``: PyG FP32 eager, dqc FP32, INT8 and INT4 on one workload, in one run.

Every column is timed the same way: wall time of one call from ``(x, edge_index)`` to logits
(graph normalization and CSR construction included), median of ``repeats`` calls after a
warm-up. The ``*_prepared_ms`` columns time the same models with the graph prepared once in
advance (PyG: cached GCN normalization / self-loops added beforehand; dqc: its CSR built by
``prepare``). ``pyg_compile_ms`` is PyG under ``torch.compile`` where that works.
``ort_fp32_ms`` / ``ort_int8_ms`` are the same FP32 and INT8 models exported to ONNX (QDQ
for INT8) under ONNX Runtime's CPU provider, graph preparation (NumPy) included.
``*_aggregation_ms`` is the time of the prepared call spent in the CSR aggregation kernels.

The INT4 column of an INT8 checkpoint (or the INT8 column of an INT4 one) comes from its
``precision_twin``: the same weights and ranges at the other bit width, not retrained, so it
is for timing only; ``twin`` names that column. ``*_weight_bytes`` are the bytes of the
constants in each binary.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch_geometric.utils import add_remaining_self_loops

from dqc._tvm import aligned
from dqc.checkpoint import load_checkpoint, save_checkpoint
from dqc.compiler import compile_checkpoint, file_sha256
from dqc.datasets import cache_dir, load_node_dataset
from dqc.degree_quant import probability_from_cdf, protection_probability, sample_protect_mask
from dqc.hparams import model_defaults, train_defaults
from dqc.models import ModelConfig, build_model
from dqc.onnx_export import export_onnx
from dqc.onnx_runtime import OnnxModel
from dqc.pyg_models import to_pyg
from dqc.runtime import load, read_manifest
from dqc.sparse_input import NONZERO_KEY, nonzero_fraction
from dqc.targets import is_cross, resolve_target, target_arch
from dqc.workloads import GRAPH_WORKLOADS, REDDIT_SHAPE, WORKLOADS, graph_batch, reddit_shaped

# Timed calls per column: at least the requested repeats, then more until this much time
# has been measured (a 1 ms Cora call gets ~500 samples, a 4 s PyG call on the Reddit
# shape just the repeats).
MIN_TIMED_SECONDS = 0.5
MAX_CALLS = 2000


def _cpu_name() -> str:
    """The CPU's model name (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def interleaved_ms(calls: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median wall time in ms of each call, the calls taking turns round by round, so that a
    slow spell of a shared machine slows every column alike and the ratios hold; after one
    warm-up round, over at least ``repeats`` rounds and as many more as it takes to spend
    ``MIN_TIMED_SECONDS`` per call in all (at most ``MAX_CALLS`` rounds)."""
    for call in calls.values():
        call()
    times: dict[str, list[float]] = {name: [] for name in calls}
    rounds, spent, budget = 0, 0.0, MIN_TIMED_SECONDS * len(calls)
    while calls and (rounds < repeats or (spent < budget and rounds < MAX_CALLS)):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
            spent += times[name][-1]
        rounds += 1
    return {name: 1e3 * statistics.median(values) for name, values in times.items()}


def calibrated_model(name: str, config: ModelConfig, inputs: tuple, protect_prob) -> Path:
    """A fresh model for ``config`` whose ranges one training-mode forward on ``inputs``
    calibrates, with a protection mask drawn from ``protect_prob`` (no training: enough for
    speed). Cached on disk under ``name``."""
    path = cache_dir() / "bench" / f"{name}-{config.arch}-{config.scheme}-seed0.pt"
    if path.exists():
        return path
    torch.manual_seed(0)
    model = build_model(config).train()
    with torch.no_grad():
        model(*inputs, sample_protect_mask(protect_prob))
    save_checkpoint(path, model, config, name, {"calibration": "one forward"}, {})
    return path


def reddit_shaped_model() -> Path:
    """The ``reddit-shaped`` workload's DQ-INT8 GCN (602 -> 128 -> 41), calibrated."""
    x, edge_index, _ = reddit_shaped()
    shape = REDDIT_SHAPE
    config = ModelConfig("gcn", "dq-int8", shape["features"], 128, shape["classes"], 0.5)
    edges = torch.from_numpy(edge_index)
    prob = protection_probability(edges, shape["num_nodes"], 0.0, 0.1)
    return calibrated_model("reddit-shaped", config, (torch.from_numpy(x), edges), prob)


def graph_batch_model(name: str, batch) -> Path:
    """Graph workload ``name``'s default DQ-INT8 model (its dataset's default shape for the
    workload's architecture), calibrated on the workload's batch."""
    workload = GRAPH_WORKLOADS[name]
    arch, dataset = workload.arch, workload.dataset
    out_channels = int(batch.y.max()) + 1 if dataset == "reddit-binary" else 1
    shape = model_defaults(arch, dataset)
    config = ModelConfig(
        arch, "dq-int8", batch.num_features, out_channels=out_channels, task="graph", **shape
    )
    settings = train_defaults(dataset, arch, "dq-int8")
    prob = probability_from_cdf(batch.degree_cdf, settings.p_min, settings.p_max)
    inputs = (batch.x, batch.edge_index, batch.batch, batch.num_graphs)
    return calibrated_model(name, config, inputs, prob)


def precision_twin(path: Path, bits: int) -> Path:
    """``path``'s weights and trained ranges under the same method at ``bits`` bits: the
    model behind the INT8 / INT4 column the checkpoint itself does not fill. Nothing is
    retrained (the ranges are quantized to fewer or more levels), so it is for timing only.
    Returns ``path`` itself when it already has ``bits``; twins are cached on disk."""
    ckpt = load_checkpoint(path)
    method, _, width = ckpt.config.scheme.partition("-int")
    if int(width) == bits:
        return path
    twin_path = cache_dir() / "bench" / f"{file_sha256(path)[:16]}-{method}-int{bits}.pt"
    if not twin_path.exists():
        config = dataclasses.replace(ckpt.config, scheme=f"{method}-int{bits}")
        twin = build_model(config)
        twin.load_state_dict(ckpt.model.state_dict())
        training = {"precision_twin_of": str(path)}
        if NONZERO_KEY in ckpt.training:  # the twin reads the same input
            training[NONZERO_KEY] = ckpt.training[NONZERO_KEY]
        save_checkpoint(twin_path, twin, config, ckpt.dataset, training, {})
    return twin_path


@dataclass
class Workload:
    """A checkpoint and the graph it is timed on (``batch``: graph-level workloads).

    The arrays sit in 64-byte-aligned memory, as in the torch tensors of a PyG ``Data``:
    every column (PyG through ``torch.from_numpy``) reads the same memory, and none pays
    for a copy that real inputs would not need."""

    checkpoint: Path
    x: np.ndarray
    edge_index: np.ndarray
    batch: np.ndarray | None = None

    def __post_init__(self):
        self.x, self.edge_index = aligned(self.x), aligned(self.edge_index)

    @property
    def inputs(self) -> tuple:
        """The arguments of ``predict``: ``(x, edge_index[, batch])``."""
        graph = (self.x, self.edge_index)
        return graph if self.batch is None else (*graph, self.batch)


def workload_graph(name: str, model_path, data_root) -> Workload:
    """Workload ``name``: ``reddit-shaped`` and the graph batches (their own calibrated model
    unless ``model_path`` is given), or a node dataset (``cora``, ..., ``synthetic``) with the
    model trained on it."""
    if name not in WORKLOADS:
        raise ValueError(f"unknown workload {name!r}; choose from {', '.join(WORKLOADS)}")
    if name == "reddit-shaped":
        x, edge_index, _ = reddit_shaped()
        return Workload(Path(model_path) if model_path else reddit_shaped_model(), x, edge_index)
    if name in GRAPH_WORKLOADS:
        batch = graph_batch(name, data_root)
        checkpoint = Path(model_path) if model_path else graph_batch_model(name, batch)
        graph = (batch.x.numpy(), batch.edge_index.numpy(), batch.batch.numpy())
        return Workload(checkpoint, *graph)
    if model_path is None:
        raise ValueError(f"the {name} workload needs a model trained on it (dqc train ...)")
    data = load_node_dataset(name, data_root)
    return Workload(Path(model_path), data.x.numpy(), data.edge_index.numpy())


def _check_task(workload: str, checkpoint: Path, task: str) -> None:
    wanted = "graph" if workload in GRAPH_WORKLOADS else "node"
    if task != wanted:
        raise ValueError(
            f"{checkpoint}: a {task}-level model; the {workload} workload times {wanted}-level "
            "models"
        )


def _dqc_calls(model, workload: Workload, name: str) -> dict:
    """The full call and the call on a prepared graph of an in-process compiled model."""
    inputs, x = workload.inputs, workload.x
    graph = model.prepare(*inputs)
    return {
        f"dqc_{name}_ms": lambda: model.predict(*inputs),
        f"dqc_{name}_prepared_ms": lambda: model.forward(x, graph),
    }


def _remote_ms(directory: Path, workload: Workload, repeats: int, remote: dict) -> tuple:
    """The median ms of a full call on the TVM RPC server (its time evaluator), and where it
    ran. The session closes on return: a server takes one session at a time."""
    model = load(directory, **remote)
    return model.time_ms(*workload.inputs, repeats=repeats), model.where


def _aggregation_ms(model, workload: Workload, repeats: int) -> float:
    """Median ms in the CSR aggregation kernels of one ``forward`` (kernel by kernel)."""
    graph = model.prepare(*workload.inputs)
    return statistics.median(
        sum(ms for name, ms in model.kernel_ms(workload.x, graph).items() if "spmm_csr" in name)
        for _ in range(repeats)
    )


def _ort_calls(directory: Path, builds: dict, x, edge_index) -> dict:
    """``ort_<name>_ms`` / ``ort_<name>_prepared_ms`` calls of the FP32 and INT8 builds
    exported to ONNX (``dqc export-onnx``) and run by ONNX Runtime on this machine."""
    calls = {}
    for name in ("fp32", "int8"):
        if name not in builds:
            continue
        path, quantized = builds[name]
        model = OnnxModel(export_onnx(path, directory / f"{name}.onnx", quantized))
        feeds = model.prepare(x, edge_index)
        calls[f"ort_{name}_ms"] = functools.partial(model.predict, x, edge_index)
        calls[f"ort_{name}_prepared_ms"] = functools.partial(model.forward, feeds)
    return calls


def _torch_compiled(model, inputs: tuple) -> tuple[Callable | None, str | None]:
    """PyG under ``torch.compile``, compiled by a first call; or why it failed."""
    try:
        compiled = torch.compile(model, dynamic=False)
        with torch.no_grad():
            compiled(*inputs)
        return torch.no_grad()(lambda: compiled(*inputs)), None
    except Exception as err:  # inductor may be unavailable or fail on a PyG op
        return None, f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"


def run_bench(
    workload: str,
    model_path: str | os.PathLike | None = None,
    repeats: int = 10,
    data_root=None,
    torch_compile: bool = True,
    log: Callable[[str], None] = lambda line: None,
    target: str | None = None,
    rpc: str | None = None,
    tracker: str | None = None,
    key: str | None = None,
) -> dict:
    """Time every column on ``workload``; returns the row (times in ms, ratios).

    With ``rpc`` (or ``tracker`` and ``key``) the dqc builds for ``target`` run and are timed
    on that TVM RPC server; PyG still runs here, so ratios against it are left out."""
    remote = {k: v for k, v in {"rpc": rpc, "tracker": tracker, "key": key}.items() if v}
    spec, _ = resolve_target(target)
    if is_cross(spec) and not remote:
        raise ValueError(
            f"a build for {target_arch(spec)} can only be timed on such a CPU: pass --rpc "
            "HOST:PORT of a board's TVM RPC server (emulated times would mean nothing)"
        )
    graph = workload_graph(workload, model_path, data_root)
    model_path, x, edge_index = graph.checkpoint, graph.x, graph.edge_index
    ckpt = load_checkpoint(model_path)
    arch, scheme = ckpt.config.arch, ckpt.config.scheme
    _check_task(workload, model_path, ckpt.config.task)
    result = {
        "workload": workload,
        "arch": arch,
        "scheme": scheme,
        "nodes": int(x.shape[0]),
        "edges": int(edge_index.shape[1]),
        "graphs": None if graph.batch is None else int(graph.batch.max()) + 1,
        "repeats": repeats,
        "machine": f"{_cpu_name()}, {os.cpu_count()} cores",
        "torch_threads": torch.get_num_threads(),
        "input_nonzero_fraction": round(nonzero_fraction(torch.from_numpy(x)), 5),
        "dqc_target": spec,
    }
    builds = {"fp32": (model_path, False)}
    if scheme != "fp32":  # the INT4 (or INT8) column from a twin of the other bit width
        builds["int8"] = (precision_twin(model_path, 8), True)
        builds["int4"] = (precision_twin(model_path, 4), True)
        result["twin"] = "int4" if scheme.endswith("int8") else "int8"
    with tempfile.TemporaryDirectory() as tmp:
        for name, (path, quantized) in builds.items():
            log(f"compile dqc {name}")
            start = time.perf_counter()
            compile_checkpoint(path, Path(tmp) / name, spec, quantized=quantized)
            result[f"dqc_{name}_compile_s"] = round(time.perf_counter() - start, 2)
            manifest = read_manifest(Path(tmp) / name)
            result[f"dqc_{name}_weight_bytes"] = manifest["constant_bytes"]
            result[f"dqc_{name}_sparse_input"] = manifest["sparse_input"]
        calls = {}
        for name in builds:
            if remote:  # timed on the server by TVM's time evaluator, full calls only
                log(f"time dqc {name} remotely")
                timed = _remote_ms(Path(tmp) / name, graph, repeats, remote)
                result[f"dqc_{name}_ms"], result["dqc_runs_on"] = timed
                result[f"dqc_{name}_prepared_ms"] = result[f"dqc_{name}_aggregation_ms"] = None
                continue
            model = load(Path(tmp) / name)
            result["dqc_runs_on"] = model.where
            calls.update(_dqc_calls(model, graph, name))
            result[f"dqc_{name}_aggregation_ms"] = _aggregation_ms(model, graph, repeats)

        inputs = [torch.from_numpy(a) for a in graph.inputs]
        eager = to_pyg(ckpt.model, arch)
        prepared = to_pyg(ckpt.model, arch, prepared=True)
        prepared_inputs = list(inputs)
        if arch == "gat":
            prepared_inputs[1] = add_remaining_self_loops(inputs[1], num_nodes=x.shape[0])[0]
        # One pass over the input features: no program that reads them is faster than this.
        calls["input_read_ms"] = lambda: inputs[0].sum()
        calls["pyg_fp32_ms"] = torch.no_grad()(lambda: eager(*inputs))
        calls["pyg_fp32_prepared_ms"] = torch.no_grad()(lambda: prepared(*prepared_inputs))
        if torch_compile:
            log("compile PyG with torch.compile")
            compiled, error = _torch_compiled(eager, inputs)
            result["pyg_compile_ms"] = None
            if compiled is not None:
                calls["pyg_compile_ms"] = compiled
            else:
                result["pyg_compile_error"] = error
        if graph.batch is None:
            log("export to ONNX for ONNX Runtime")
            calls.update(_ort_calls(Path(tmp), builds, x, edge_index))
        else:
            result["ort_skipped"] = "dqc's ONNX export covers node-level models only"
        log(f"time {len(calls)} columns, taking turns")
        result.update(interleaved_ms(calls, repeats))
    for column in [k for k in result if k.endswith("_ms")]:
        result[column] = None if result[column] is None else round(result[column], 3)
    if "dqc_int8_ms" in result:
        result["speedup_vs_fp32"] = round(result["dqc_fp32_ms"] / result["dqc_int8_ms"], 2)
        result["int4_speedup_vs_int8"] = round(result["dqc_int8_ms"] / result["dqc_int4_ms"], 2)
        if not remote:
            agg8, agg4 = result["dqc_int8_aggregation_ms"], result["dqc_int4_aggregation_ms"]
            result["int4_aggregation_speedup_vs_int8"] = round(agg8 / agg4, 2)
        if not remote:  # PyG and dqc on the same machine
            result["speedup_vs_pyg"] = round(result["pyg_fp32_ms"] / result["dqc_int8_ms"], 2)
            if "ort_int8_ms" in result:
                ort = result["ort_int8_ms"]
                result["speedup_vs_ort_int8"] = round(ort / result["dqc_int8_ms"], 2)
            result["speedup_prepared_vs_pyg_prepared"] = round(
                result["pyg_fp32_prepared_ms"] / result["dqc_int8_prepared_ms"], 2
            )
    return result
