"""``dqc run``: evaluate a compiled model on a dataset's test split, with a parity report.

Next to the compiled model's metric it reports the fake-quant PyTorch model's (the trained
checkpoint, copied into the artifact folder at compile time), how often both predict the same
class, and whether the logits equal the NumPy integer reference (``dqc.reference``) bit for bit.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from dqc.checkpoint import load_checkpoint
from dqc.datasets import load_node_dataset
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
