"""ONNX Runtime on dqc's exported models: sessions, metadata and the ``dqc eval`` of a .onnx.

Sessions keep ONNX Runtime's default optimizations (its QDQ fusion into integer ``QGemm``
and friends included) except one: the double-QDQ remover. It collapses a
quantize -> dequantize -> quantize chain (a DQ layer's ``feature`` then ``update`` point) into a
single rounding, which changes the model's results (on a Cora GIN, 1.2 % of test nodes
flip class); with it off ONNX Runtime computes the model as written.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from dqc.frontend.export import DEFAULT_MAX_EDGES, DEFAULT_MAX_NODES
from dqc.graph_prep import check_inputs
from dqc.onnx_export import FORMAT, onnx_inputs


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The ``dqc.*`` metadata of an exported model; ValueError if it has none."""
    model = onnx.load(str(path), load_external_data=False)
    metadata = {p.key: p.value for p in model.metadata_props if p.key.startswith("dqc.")}
    if metadata.get("dqc.format") != FORMAT:
        raise ValueError(
            f"{path}: not an ONNX model exported by `dqc export-onnx` (no dqc.format metadata)"
        )
    return metadata


def session(path: str | os.PathLike, threads: int | None = None) -> ort.InferenceSession:
    """An ONNX Runtime CPU session (see the module docstring for its one changed option)."""
    options = ort.SessionOptions()
    options.add_session_config_entry("session.disable_double_qdq_remover", "1")
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxModel:
    """An exported model under ONNX Runtime: ``predict(x, edge_index)`` as ``dqc.load``'s."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None):
        self.path = Path(path)
        self.metadata = read_metadata(path)
        self.config = json.loads(self.metadata["dqc.model"])
        self.session = session(path, threads)
        self.input_names = [i.name for i in self.session.get_inputs()]

    def prepare(self, x, edge_index) -> dict[str, np.ndarray]:
        """Checked inputs (``dqc.graph_prep.check_inputs``), as the exported graph takes them."""
        x, edge_index = check_inputs(
            x, edge_index, self.config["in_channels"], DEFAULT_MAX_NODES, DEFAULT_MAX_EDGES
        )
        feeds = onnx_inputs(x, edge_index, self.metadata["dqc.self_loops"])
        return {name: feeds[name] for name in self.input_names}

    def forward(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        return self.session.run(None, feeds)[0]

    def predict(self, x: np.ndarray, edge_index: np.ndarray) -> np.ndarray:
        return self.forward(self.prepare(x, edge_index))
