"""``dqc demo``: the whole flow on a built-in synthetic graph, with no download.

Trains an FP32 GCN and a Degree-Quant INT8 GCN on the same power-law graph, saves the DQ
checkpoint and reloads it, compiles it for this machine into an integer program, runs the
program, checks it against the NumPy integer reference (bit for bit) and the fake-quant model
(same predictions), and times it next to PyG's FP32 model in the same run.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from dqc.bench import interleaved_ms
from dqc.checkpoint import load_checkpoint, save_checkpoint
from dqc.compiler import compile_checkpoint
from dqc.evaluation import accuracy
from dqc.pyg_models import to_pyg
from dqc.reference import IntegerReference
from dqc.runtime import load
from dqc.synthetic import synthetic_graph
from dqc.training import evaluate, train_model


def run_demo(
    output: str | os.PathLike, epochs: int = 100, progress: bool = True, repeats: int = 20
) -> dict:
    """Train, save, compile, verify and time; print a summary and return the numbers."""
    data = synthetic_graph()
    print(
        f"synthetic graph: {data.num_nodes} nodes, {data.num_edges} edges, "
        f"{data.num_features} features, {int(data.y.max()) + 1} classes"
    )
    results = {}
    for scheme in ("fp32", "dq-int8"):
        trained = train_model(
            "synthetic", "gcn", scheme, data=data, epochs=epochs, progress=progress
        )
        results[f"{scheme}_test_acc"] = trained.metrics["test_acc"]
        print(f"  gcn {scheme:8s} test accuracy {trained.metrics['test_acc']:.1f} %")

    path = Path(output) / "model.pt"
    save_checkpoint(
        path, trained.model, trained.config, "synthetic", trained.training, trained.metrics
    )
    fake_quant = load_checkpoint(path).model.eval()
    reloaded = evaluate(fake_quant, data)["test_acc"]
    if reloaded != results["dq-int8_test_acc"]:
        raise RuntimeError(
            f"reloaded checkpoint scores {reloaded}, not {results['dq-int8_test_acc']}"
        )

    print(f"saved {path} (reloaded: test accuracy {reloaded:.1f} %)")

    compiled_dir = Path(output) / "compiled"
    print(f"compiling {path} -> {compiled_dir} ...")
    compile_checkpoint(path, compiled_dir, log=print if progress else lambda line: None)
    compiled = load(compiled_dir)
    x, edge_index = data.x.numpy(), data.edge_index.numpy()
    logits = compiled.predict(x, edge_index)
    test = data.test_mask.numpy()
    with torch.no_grad():
        fq_logits = fake_quant(data.x, data.edge_index).numpy()
    bitexact = bool(np.array_equal(logits, IntegerReference(path).predict(x, edge_index)))
    agreement = 100.0 * float((logits.argmax(1) == fq_logits.argmax(1)).mean())
    results.update(
        compiled_test_acc=accuracy(logits[test], data.y.numpy()[test]),
        bitexact_with_reference=bitexact,
        agreement_with_fakequant=agreement,
    )
    print(
        f"  compiled int8 test accuracy {results['compiled_test_acc']:.1f} %, "
        f"bit-exact with the integer reference: {bitexact}, "
        f"same class as fake-quant on {agreement:.1f} % of nodes"
    )
    if not bitexact:
        raise RuntimeError("the compiled program differs from the integer reference")

    pyg = to_pyg(fake_quant, "gcn")
    times = interleaved_ms(
        {
            "pyg": torch.no_grad()(lambda: pyg(data.x, data.edge_index)),
            "dqc": lambda: compiled.predict(x, edge_index),
        },
        repeats,
    )
    pyg_ms, dqc_ms = times["pyg"], times["dqc"]
    results.update(pyg_fp32_ms=pyg_ms, dqc_int8_ms=dqc_ms, speedup=pyg_ms / dqc_ms)
    print(
        f"  one inference: PyG FP32 {pyg_ms:.2f} ms, dqc INT8 {dqc_ms:.2f} ms "
        f"({pyg_ms / dqc_ms:.1f}x; medians of at least {repeats} calls each, taking turns)"
    )
    print(f"DQ-INT8 vs FP32: {results['dq-int8_test_acc'] - results['fp32_test_acc']:+.1f} points")
    return results
