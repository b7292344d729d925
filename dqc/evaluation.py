"""``dqc run``: evaluate a compiled model on a dataset's test split, with a parity report.

Next to the compiled model's metric it reports the fake-quant PyTorch model's (the trained
checkpoint, copied into the artifact folder at compile time), how often both predict the same
class, and whether the logits equal the NumPy integer reference (``dqc.reference``) bit for bit.
Graph-level models run the whole test split as one batch and report ``metric`` / ``value``
(accuracy % or MAE) and ``fakequant_value`` instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from dqc.checkpoint import load_checkpoint
from dqc.datasets import load_node_dataset
from dqc.graph_datasets import load_graph_dataset
from dqc.reference import IntegerReference
from dqc.runtime import load


def accuracy(logits: np.ndarray, y: np.ndarray) -> float:
    """Percent of rows whose highest logit is the label."""
    return 100.0 * float((logits.argmax(1) == y).mean())


def evaluate_artifact(
    directory: str | os.PathLike, dataset: str | None = None, data_root=None, **remote
) -> dict:
    """Test metric of the compiled model and its parity with the fake-quant and reference.

    ``remote`` (``rpc``, ``tracker``, ``key``) runs the model on a TVM RPC server."""
    model = load(directory, **remote)
    manifest = model.manifest
    dataset = dataset or manifest["dataset"]
    if model.graph_level:
        return _evaluate_graph_level(model, Path(directory), dataset, data_root)
    data = load_node_dataset(dataset, data_root)
    if data.num_features != model.num_features:
        raise ValueError(
            f"{directory}: the model takes {model.num_features} features, "
            f"{dataset} has {data.num_features}"
        )
    x, edge_index = data.x.numpy(), data.edge_index.numpy()
    mask, y = data.test_mask.numpy(), data.y.numpy()
    logits = model.predict(x, edge_index)

    checkpoint = Path(directory) / manifest["checkpoint"]["file"]
    # An FP32 build of a quantized checkpoint has no fake-quant twin to compare with.
    same_program = manifest["scheme"] == manifest["trained_scheme"]
    fake_quant = load_checkpoint(checkpoint).model if same_program else None
    bitexact = None
    if manifest["scheme"] != "fp32":
        reference = IntegerReference(checkpoint).predict(x, edge_index)
        bitexact = bool(np.array_equal(logits, reference))

    result = {
        "dataset": dataset,
        "arch": manifest["arch"],
        "scheme": manifest["scheme"],
        "target": manifest["target"],
        "runs_on": model.where,
        "accuracy": round(accuracy(logits[mask], y[mask]), 4),
        "fakequant_accuracy": None,
        "agreement": None,
        "bitexact_with_reference": bitexact,
    }
    if fake_quant is not None:
        with torch.no_grad():
            fq = fake_quant.eval()(data.x, data.edge_index).numpy()
        result["fakequant_accuracy"] = round(accuracy(fq[mask], y[mask]), 4)
        same = logits[mask].argmax(1) == fq[mask].argmax(1)
        result["agreement"] = round(100.0 * float(same.mean()), 4)
    return result


def _evaluate_graph_level(model, directory: Path, dataset: str, data_root) -> dict:
    from torch_geometric.data import Batch

    manifest = model.manifest
    checkpoint = directory / manifest["checkpoint"]["file"]
    ckpt = load_checkpoint(checkpoint)
    splits = load_graph_dataset(dataset, data_root, int(ckpt.training.get("fold", 0)))
    if splits.num_features != model.num_features:
        raise ValueError(
            f"{directory}: the model takes {model.num_features} features, "
            f"{dataset} has {splits.num_features}"
        )
    test = Batch.from_data_list(splits.test)
    inputs = (test.x.numpy(), test.edge_index.numpy(), test.batch.numpy())
    y = test.y.numpy()
    outputs = model.predict(*inputs)

    def score(out: np.ndarray) -> float:
        if splits.metric == "accuracy":
            return round(accuracy(out, y), 4)
        return round(float(np.abs(out - y).mean()), 6)

    result = {
        "dataset": dataset,
        "arch": manifest["arch"],
        "scheme": manifest["scheme"],
        "target": manifest["target"],
        "runs_on": model.where,
        "graphs": int(test.num_graphs),
        "metric": splits.metric,
        "value": score(outputs),
        "fakequant_value": None,
        "bitexact_with_reference": None,
    }
    if splits.metric == "accuracy":
        result["agreement"] = None
    if manifest["scheme"] != "fp32":
        reference = IntegerReference(checkpoint).predict(*inputs)
        result["bitexact_with_reference"] = bool(np.array_equal(outputs, reference))
    if manifest["scheme"] == manifest["trained_scheme"]:
        with torch.no_grad():
            fq = ckpt.model(test.x, test.edge_index, test.batch, test.num_graphs).numpy()
        result["fakequant_value"] = score(fq)
        if splits.metric == "accuracy":
            same = outputs.argmax(1) == fq.argmax(1)
            result["agreement"] = round(100.0 * float(same.mean()), 4)
    return result
