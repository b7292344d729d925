"""Load and run a compiled model: ``dqc.load("out/").predict(x, edge_index)``.

The runtime checks inputs against the manifest (dtypes, shapes, finite values, node ids,
compiled bounds), prepares the graph (``dqc.graph_prep``) and calls the TVM Relax VM.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tvm
from tvm import relax

from dqc._tvm import tensor
from dqc.compiler import FORMAT, MANIFEST, VERSION
from dqc.graph_prep import check_inputs


class ArtifactError(ValueError):
    """A compiled-model folder is missing, incomplete or of an unknown version."""


def read_manifest(directory: str | os.PathLike) -> dict:
    path = Path(directory) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ArtifactError(f"{path}: cannot read the manifest ({err})") from None
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise ArtifactError(f"{path}: not a dqc artifact of version {VERSION}")
    return manifest


@dataclass
class CompiledModel:
    """A compiled GNN: ``predict(x, edge_index) -> logits`` (float32 ``[N, classes]``)."""

    directory: Path
    manifest: dict
    vm: relax.VirtualMachine
    device: tvm.runtime.Device

    @property
    def num_features(self) -> int:
        return int(self.manifest["inputs"]["x"]["shape"][1])

    def check(self, x, edge_index) -> tuple[np.ndarray, np.ndarray]:
        bounds = self.manifest["bounds"]
        return check_inputs(
            x,
            edge_index,
            self.num_features,
            bounds["max_nodes"],
            bounds["max_edges"],
            bounds.get("max_in_degree"),
        )

    def predict(self, x, edge_index) -> np.ndarray:
        """Logits of every node; ``ValueError`` on invalid input."""
        x, edge_index = self.check(x, edge_index)
        return self.vm["main"](tensor(x), tensor(edge_index))[0].numpy()

    def prepare(self, x: np.ndarray, edge_index: np.ndarray) -> tuple:
        """The graph in the binary's CSR layout, for repeated ``forward`` calls (checked input)."""
        return tuple(self.vm["prepare"](tensor(x), tensor(edge_index)))

    def forward(self, x, graph: tuple) -> np.ndarray:
        """Logits for a graph from ``prepare`` (``x`` as a TVM tensor or checked array)."""
        x = x if isinstance(x, tvm.runtime.Tensor) else tensor(x)
        return self.vm["forward"](x, *graph)[0].numpy()


def load(directory: str | os.PathLike) -> CompiledModel:
    """Load ``out/`` written by ``dqc compile`` for this machine."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    library = directory / manifest["library"]
    if not library.is_file():
        raise ArtifactError(f"{library}: missing")
    device = tvm.cpu()
    vm = relax.VirtualMachine(tvm.runtime.load_module(str(library)), device)
    return CompiledModel(directory, manifest, vm, device)
