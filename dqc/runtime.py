"""Load and run a compiled model: ``dqc.load("out/").predict(x, edge_index)``.

The runtime checks inputs against the manifest (dtypes, shapes, finite values, node ids,
compiled bounds; what the binary checks itself, it leaves to the binary and names the problem
when the binary reports one), then calls the model's Relax VM where it can run:

* in this process, when the build is for this machine's CPU;
* on a remote TVM RPC server (``rpc="host:port"``, or a tracker and key), which receives
  the library: a board on the network, or a server on loopback;
* under qemu-user emulation, for an aarch64 build on an x86 host (``dqc.emulation``).
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tvm
from tvm import relax, rpc

from dqc._tvm import tensor, to_numpy
from dqc.compiler import FORMAT, MANIFEST, VERSION
from dqc.graph_prep import check_batch, check_inputs, check_node_ids
from dqc.kernels.graph_prep import NODE_ID_ERROR
from dqc.profiling import kernel_times
from dqc.targets import is_cross, target_arch


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


def _outputs(result) -> list:
    """The VM's result (one tensor or a tuple of them) as a list."""
    return [result] if isinstance(result, tvm.runtime.Tensor) else list(result)


class LocalVM:
    """The Relax VM in this process; inputs are passed without copies where possible."""

    where = "local"

    def __init__(self, library: Path):
        self.device = tvm.cpu()
        self.vm = relax.VirtualMachine(tvm.runtime.load_module(str(library)), self.device)

    def run(self, function: str, arrays, repeats: int = 0) -> tuple[list[np.ndarray], float]:
        args = [tensor(a) for a in arrays]
        outputs = [to_numpy(t) for t in _outputs(self.vm[function](*args))]
        ms = float("nan")
        if repeats:
            timer = self.vm.time_evaluator(function, self.device, number=1, repeat=repeats)
            ms = 1e3 * timer(*args).median
        return outputs, ms


class RemoteVM:
    """The Relax VM on a TVM RPC server, which is sent the library first."""

    def __init__(self, library: Path, session: rpc.RPCSession, where: str):
        self.where = where
        session.upload(str(library))
        self.device = session.cpu()
        self.vm = relax.VirtualMachine(session.load_module(library.name), self.device)
        self._size = session.get_function("ffi.ArraySize")
        self._item = session.get_function("ffi.ArrayGetItem")

    def run(self, function: str, arrays, repeats: int = 0) -> tuple[list[np.ndarray], float]:
        args = [tvm.runtime.tensor(np.ascontiguousarray(a), device=self.device) for a in arrays]
        result = self.vm[function](*args)
        if isinstance(result, tvm.runtime.Tensor):
            outputs = [result.numpy()]
        else:  # a remote tuple: fetch its items one by one
            outputs = [self._item(result, i).numpy() for i in range(self._size(result))]
        ms = float("nan")
        if repeats:
            timer = self.vm.time_evaluator(function, self.device, number=1, repeat=repeats)
            ms = 1e3 * timer(*args).median
        return outputs, ms


def connect(rpc_address: str | None = None, tracker: str | None = None, key: str | None = None):
    """An RPC session to ``host:port``, or to a device of ``key`` from the tracker at
    ``host:port``; ``(None, None)`` when neither is given. Returns (session, description)."""

    def split(address: str, flag: str) -> tuple[str, int]:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"{flag} {address!r} is not HOST:PORT")
        return host, int(port)

    if rpc_address and tracker:
        raise ValueError("give either --rpc or --tracker, not both")
    try:
        if rpc_address:
            return rpc.connect(*split(rpc_address, "--rpc")), f"rpc {rpc_address}"
        if tracker:
            if not key:
                raise ValueError("--tracker needs --key, the device key to request")
            session = rpc.connect_tracker(*split(tracker, "--tracker")).request(key)
            return session, f"rpc tracker {tracker} key {key}"
    except (ConnectionError, RuntimeError) as err:
        where = rpc_address or tracker
        raise RuntimeError(f"cannot reach the TVM RPC server at {where}: {err}") from None
    return None, None


@contextmanager
def _node_ids_checked(edge_index: np.ndarray, num_nodes: int):
    """Where the binary stopped on a bad node id, the ``ValueError`` naming it."""
    try:
        yield
    except RuntimeError as err:
        if NODE_ID_ERROR in str(err):
            check_node_ids(edge_index, num_nodes)
        raise


@dataclass
class CompiledModel:
    """A compiled GNN: ``predict(x, edge_index) -> logits`` (float32 ``[N, classes]``), or for
    graph-level models ``predict(x, edge_index, batch)`` -> ``[num_graphs, outputs]``."""

    directory: Path
    manifest: dict
    vm: LocalVM | RemoteVM

    @property
    def num_features(self) -> int:
        return int(self.manifest["inputs"]["x"]["shape"][1])

    @property
    def where(self) -> str:
        """Where the model runs: ``local``, ``rpc HOST:PORT``, ``qemu-aarch64 emulation``."""
        return self.vm.where

    @property
    def graph_level(self) -> bool:
        return self.manifest.get("task") == "graph"

    def check(self, x, edge_index, batch=None) -> list[np.ndarray]:
        """The checked arguments of ``main``: ``[x, edge_index]`` (+ ``graph_ptr``)."""
        bounds = self.manifest["bounds"]
        arrays = list(
            check_inputs(
                x,
                edge_index,
                self.num_features,
                bounds["max_nodes"],
                bounds["max_edges"],
                bounds.get("max_in_degree"),
                check_finite=self._flags_output is None,
                check_ids=not self.manifest.get("checks_node_ids", False),
            )
        )
        if self.graph_level:
            arrays.append(check_batch(batch, arrays[0].shape[0]))
        elif batch is not None:
            raise ValueError("this is a node-level model: it takes no batch vector")
        return arrays

    @property
    def _flags_output(self) -> int | None:
        """Index of the output where the binary flags rows of x holding NaN / Inf, if any."""
        flags = self.manifest["outputs"].get("non_finite_rows")
        return None if flags is None else int(flags["index"])

    def _logits(self, outputs: list[np.ndarray]) -> np.ndarray:
        """The logits among the outputs of ``main`` / ``forward``; ``ValueError`` when the
        binary flagged a row of x holding NaN or Inf."""
        if self._flags_output is not None:
            rows = np.flatnonzero(outputs[self._flags_output])
            if rows.size:
                more = f" and {rows.size - 1} more rows" if rows.size > 1 else ""
                raise ValueError(f"x contains NaN or Inf (row {rows[0]}{more})")
        logits = outputs[0]
        return logits[:-1] if self.graph_level else logits  # drop the appended empty graph

    def predict(self, x, edge_index, batch=None) -> np.ndarray:
        """Logits of every node (of every graph of ``batch`` for graph-level models);
        ``ValueError`` on invalid input."""
        arrays = self.check(x, edge_index, batch)
        with _node_ids_checked(arrays[1], arrays[0].shape[0]):
            outputs = self.vm.run("main", arrays)[0]
        return self._logits(outputs)

    def time_ms(self, x, edge_index, batch=None, repeats: int = 10) -> float:
        """Median ms of one ``main`` call where the model runs (remote timings over RPC)."""
        return self.vm.run("main", self.check(x, edge_index, batch), repeats)[1]

    def prepare(self, x: np.ndarray, edge_index: np.ndarray, batch=None) -> tuple:
        """The graph in the binary's CSR layout (and the batch's ``graph_ptr``), for repeated
        ``forward`` calls (checked input; in-process models only)."""
        with _node_ids_checked(edge_index, x.shape[0]):
            graph = tuple(self._local().vm["prepare"](tensor(x), tensor(edge_index)))
        if self.graph_level:
            graph += (tensor(check_batch(batch, x.shape[0])),)
        return graph

    def forward(self, x, graph: tuple) -> np.ndarray:
        """Logits for a graph from ``prepare`` (``x`` as a TVM tensor or checked array)."""
        x = x if isinstance(x, tvm.runtime.Tensor) else tensor(x)
        outputs = _outputs(self._local().vm["forward"](x, *graph))
        return self._logits([to_numpy(t) for t in outputs])

    def kernel_ms(self, x, graph: tuple) -> dict[str, float]:
        """Milliseconds in each kernel during one ``forward`` call (in-process models)."""
        x = x if isinstance(x, tvm.runtime.Tensor) else tensor(x)
        times = kernel_times(self._local().vm, "forward", x, *graph)
        return {name: 1e3 * seconds for name, seconds in times.items()}

    def _local(self) -> LocalVM:
        if not isinstance(self.vm, LocalVM):
            raise ValueError(f"prepare/forward need an in-process model, not {self.where}")
        return self.vm


def load(
    directory: str | os.PathLike,
    rpc: str | None = None,
    tracker: str | None = None,
    key: str | None = None,
) -> CompiledModel:
    """Load ``out/`` written by ``dqc compile``: in this process, on the TVM RPC server at
    ``rpc="host:port"`` (or from ``tracker="host:port"`` with device ``key``), or, for an
    aarch64 build on another CPU, under qemu-user emulation (said on stderr)."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    library = directory / manifest["library"]
    if not library.is_file():
        raise ArtifactError(f"{library}: missing")
    session, where = connect(rpc, tracker, key)
    if session is not None:
        return CompiledModel(directory, manifest, RemoteVM(library, session, where))
    if is_cross(manifest["target"]):
        arch = target_arch(manifest["target"])
        if arch != "aarch64":
            raise ArtifactError(f"{directory}: built for {arch}, which this machine cannot run")
        from dqc.emulation import EmulatedVM

        print(f"dqc: running the {arch} build under qemu-aarch64 emulation", file=sys.stderr)
        return CompiledModel(directory, manifest, EmulatedVM(library))
    return CompiledModel(directory, manifest, LocalVM(library))
