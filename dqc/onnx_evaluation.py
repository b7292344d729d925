"""``dqc eval model.onnx``: test accuracy under ONNX Runtime, and agreement with the
fake-quant PyTorch model it was exported from (``--reference model.pt``)."""

from __future__ import annotations

import os

import numpy as np
import torch

from dqc.checkpoint import load_checkpoint
from dqc.datasets import load_node_dataset
from dqc.evaluation import accuracy
from dqc.onnx_runtime import OnnxModel


def evaluate_onnx(
    path: str | os.PathLike, reference: str | os.PathLike | None = None, data_root=None
) -> dict:
    """``value`` (test accuracy, %) of the ONNX model and, given ``reference``, ``agreement``:
    the percent of test nodes it predicts as the reference's fake-quant model does."""
    model = OnnxModel(path)
    dataset = model.metadata["dqc.dataset"]
    data = load_node_dataset(dataset, data_root)
    mask, y = data.test_mask.numpy(), data.y.numpy()
    logits = model.predict(data.x.numpy(), data.edge_index.numpy())
    result = {
        "dataset": dataset,
        "arch": model.metadata["dqc.arch"],
        "scheme": model.metadata["dqc.scheme"],
        "runtime": "onnxruntime",
        "metric": "accuracy",
        "value": round(accuracy(logits[mask], y[mask]), 4),
        "agreement": None,
    }
    if reference is not None:
        ckpt = load_checkpoint(reference)
        if ckpt.config.to_dict() != model.config:
            raise ValueError(f"{reference} is not the model {path} was exported from")
        with torch.no_grad():
            expected = ckpt.model.eval()(data.x, data.edge_index).numpy()
        same = logits[mask].argmax(1) == expected[mask].argmax(1)
        result["agreement"] = round(100.0 * float(np.mean(same)), 4)
    return result
