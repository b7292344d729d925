"""``torch.export`` of a frozen model with symbolic node and edge counts, then Relax import."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import tvm
from tvm.relax.frontend.torch import from_exported_program

from dqc.frontend.convert_map import DQC_CONVERT_MAP

DEFAULT_MAX_NODES = 1 << 24
DEFAULT_MAX_EDGES = 1 << 28


@dataclass(frozen=True)
class GraphBounds:
    """Declared bounds of the graphs a compiled model accepts (checked at run time)."""

    max_nodes: int = DEFAULT_MAX_NODES
    max_edges: int = DEFAULT_MAX_EDGES

    def __post_init__(self):
        if not (2 <= self.max_nodes and 1 <= self.max_edges):
            raise ValueError(f"graph bounds must be positive: {self}")


def example_inputs(num_features: int, num_nodes: int = 8) -> tuple[torch.Tensor, ...]:
    """A small prepared graph (a ring with self-loops) to trace with."""
    nodes = torch.arange(num_nodes)
    src = torch.cat([nodes, nodes]).roll(1)
    dst = torch.cat([nodes, nodes]).sort().values
    indptr = torch.arange(0, 2 * num_nodes + 1, 2)
    return torch.randn(num_nodes, num_features), src, dst, indptr


def export_program(
    frozen: torch.nn.Module, num_features: int, bounds: GraphBounds, graph_level: bool = False
):
    """The ``ExportedProgram`` of ``frozen(x, src, dst, indptr[, graph_ptr])`` with dynamic
    node, edge (and graph) counts."""
    nodes = torch.export.Dim("num_nodes", min=2, max=bounds.max_nodes)
    edges = torch.export.Dim("num_edges", min=1, max=bounds.max_edges)
    dynamic = [{0: nodes}, {0: edges}, {0: edges}, {0: nodes + 1}]
    inputs = example_inputs(num_features)
    if graph_level:  # the ring split into two graphs of 4 and 4 nodes
        # A plain symbol (not num_graphs + 1), so the VM can bind it from the argument; at
        # least 3 (torch specializes sizes 0 and 1 of the output): the runtime always appends
        # one empty graph to the batch and drops its row.
        dynamic.append({0: torch.export.Dim("graph_rows", min=3, max=bounds.max_nodes + 2)})
        inputs = (*inputs, torch.tensor([0, 4, 8, 8]))
    return torch.export.export(frozen, inputs, dynamic_shapes=tuple(dynamic))


def import_program(program) -> tvm.IRModule:
    """Relax module of an exported program, with dqc's converters.

    The importer records the node/edge upper bounds on ``main``, and Relax's memory planner
    would then reserve buffers for the largest graph at start-up (gigabytes at the default
    bounds); dqc drops them and checks the bounds in its runtime instead. ``main`` is marked
    with ``dqc.graph_inputs``: its ``dst`` is sorted and ``indptr`` is its CSR row pointer.
    """
    mod = from_exported_program(
        program, custom_convert_map=DQC_CONVERT_MAP, run_ep_decomposition=False
    )
    main = mod["main"].without_attr("tir_var_upper_bound")
    main = main.with_attr("dqc.graph_inputs", ["src", "dst", "indptr"])  # (then graph_ptr)
    mod.update_func(mod.get_global_var("main"), main)
    return mod
