"""``dqc demo``: the whole flow on a built-in synthetic graph, with no download.

Trains an FP32 GCN and a Degree-Quant INT8 GCN on the same power-law graph, saves the DQ
checkpoint, reloads it and checks that the reloaded model scores the same.
"""

from __future__ import annotations

import os
from pathlib import Path

from dqc.checkpoint import load_checkpoint, save_checkpoint
from dqc.synthetic import synthetic_graph
from dqc.training import evaluate, train_model


def run_demo(output: str | os.PathLike, epochs: int = 100, progress: bool = True) -> dict:
    """Train, save and reload; print a summary and return the test accuracies."""
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
        results[scheme] = trained.metrics["test_acc"]
        print(f"  gcn {scheme:8s} test accuracy {results[scheme]:.1f} %")

    path = Path(output) / "model.pt"
    save_checkpoint(
        path, trained.model, trained.config, "synthetic", trained.training, trained.metrics
    )
    reloaded = evaluate(load_checkpoint(path).model, data)["test_acc"]
    if reloaded != results["dq-int8"]:
        raise RuntimeError(f"reloaded checkpoint scores {reloaded}, not {results['dq-int8']}")
    print(f"saved {path} (reloaded: test accuracy {reloaded:.1f} %)")
    print(f"DQ-INT8 vs FP32: {results['dq-int8'] - results['fp32']:+.1f} points")
    return results
