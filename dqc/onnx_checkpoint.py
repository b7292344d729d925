"""A dqc checkpoint rebuilt from an exported ONNX model, for ``dqc compile model.onnx``.

The compiled artifact keeps a checkpoint for its parity report (``dqc run``: fake-quant model
and NumPy integer reference). For an ONNX source it is rebuilt from the file itself: the model
config and every scalar of the state dict (tracked ranges, GIN's eps) from the metadata, the
weights and biases from the initializers named in ``dqc.sources`` (integer codes are
dequantized, which quantizes back to the same codes). So the reference checks the program
against what the ONNX file says, not against the checkpoint it once came from.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import onnx
import torch
from onnx import numpy_helper

from dqc.checkpoint import save_checkpoint
from dqc.models import ModelConfig, build_model, quantization_points
from dqc.onnx_runtime import read_metadata


def recover_checkpoint(source: str | os.PathLike, output: str | os.PathLike) -> Path:
    """Write the checkpoint of exported model ``source`` to ``output``."""
    metadata = read_metadata(source)
    model_proto = onnx.load(str(source))
    initializers = {t.name: t for t in model_proto.graph.initializer}
    config = ModelConfig.from_dict(json.loads(metadata["dqc.model"]))
    model = build_model(config)
    state = model.state_dict()
    for key, values in json.loads(metadata["dqc.scalars"]).items():
        if key not in state:
            raise ValueError(f"{source}: metadata names {key!r}, which a {config.arch} lacks")
        state[key] = torch.tensor(values, dtype=state[key].dtype).reshape(state[key].shape)
    model.load_state_dict(state)
    qparams = {key: q.qparams() for key, q in quantization_points(model).items()}
    for name, entry in json.loads(metadata["dqc.sources"]).items():
        if name not in initializers:
            if entry["state"] in json.loads(metadata["dqc.scalars"]):
                continue  # a scalar the exporter folded into a constant (GIN's 1 + eps)
            raise ValueError(f"{source}: initializer {name!r} is missing")
        value = numpy_helper.to_array(initializers[name])
        if entry["role"] is not None:
            value = qparams[(entry["layer"], entry["role"])].dequantize(value)
        state[entry["state"]] = torch.from_numpy(value.copy()).reshape(state[entry["state"]].shape)
    model.load_state_dict(state)
    training = {"exported_onnx": str(source)}
    save_checkpoint(output, model.eval(), config, metadata["dqc.dataset"], training, {})
    return Path(output)
