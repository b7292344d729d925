"""AddGraphPrep: give the model an ``(x, edge_index)`` entry point that builds its own CSR.

The imported function takes a prepared graph (``src``, ``dst`` sorted by target, ``indptr``).
This pass renames it ``forward`` and adds::

    prepare(x, edge_index) -> (src, dst, indptr)      # dqc_graph_prep kernel, O(E)
    main(x, edge_index)    -> forward(x, *prepare(x, edge_index))

(graph-level models take one more input, ``graph_ptr``, which ``main`` passes through), so a
caller passes PyG-style inputs, while benchmarks can still prepare a graph once and call
``forward`` directly. Whether self-loops are added or removed is the pass's parameter.
"""

from __future__ import annotations

import tvm
from tvm import relax, tirx

from dqc.kernels import add_kernel
from dqc.kernels.graph_prep import CHUNKS, graph_prep


@tvm.transform.module_pass(opt_level=0, name="AddGraphPrep")
class AddGraphPrep:
    def __init__(self, self_loops: str):
        if self_loops not in ("add", "remove"):
            raise ValueError(f"self_loops must be 'add' or 'remove', got {self_loops!r}")
        self.self_loops = self_loops

    def transform_module(self, mod: tvm.IRModule, ctx) -> tvm.IRModule:
        if "forward" in [g.name_hint for g in mod.get_global_vars()]:
            return mod
        main_var = mod.get_global_var("main")
        # Public (a global symbol) so its signature survives: callers pass a prepared graph.
        model = mod[main_var].with_attr("global_symbol", "forward")

        features = model.params[0].ty.shape[1]
        mod = tvm.IRModule({g: f for g, f in mod.functions.items() if g != main_var})
        bb = relax.BlockBuilder(mod)
        forward = bb.add_func(model, "forward")

        n, e = tirx.Var("num_nodes", "int64"), tirx.Var("num_edges", "int64")
        x = relax.Var("x", relax.TensorType([n, features], "float32"))
        edge_index = relax.Var("edge_index", relax.TensorType([2, e], "int64"))
        kernel = add_kernel(bb, graph_prep(self.self_loops == "add"), "dqc_graph_prep")
        outputs = [
            relax.TensorType([e + n], "int64"),
            relax.TensorType([e + n], "int64"),
            relax.TensorType([n + 1], "int64"),
            relax.TensorType([CHUNKS, n], "int64"),
        ]
        with bb.function("prepare", [x, edge_index]):
            csr = bb.emit(relax.call_tir(kernel, [edge_index], outputs))
            src, dst, indptr = (bb.emit(relax.TupleGetItem(csr, i)) for i in range(3))
            # The kernel's outputs have room for E + N edges; view them as the edges it wrote
            # (a data-dependent size, bound at run time; no copy), so no op sees padding.
            total = bb.emit(relax.op.strided_slice(indptr, [0], [n], [n + 1]))
            shape = bb.emit(relax.op.tensor_to_shape(total))
            m = tirx.Var("prepared_edges", "int64")
            bb.match_cast(shape, relax.ShapeType([m]))

            src, dst = (bb.emit(relax.op.memory.view(t, relax.ShapeExpr([m]))) for t in (src, dst))
            bb.emit_func_output(relax.Tuple([src, dst, indptr]))

        prepare = bb.get().get_global_var("prepare")

        x2 = relax.Var("x", relax.TensorType([n, features], "float32"))
        edge_index2 = relax.Var("edge_index", relax.TensorType([2, e], "int64"))
        extra = [  # graph-level models: graph_ptr, the CSR row pointer of the batch vector
            relax.Var("graph_ptr", relax.TensorType([tirx.Var("graph_rows", "int64")], "int64"))
            for _ in model.params[4:]
        ]
        with bb.function("main", [x2, edge_index2, *extra]):
            graph = bb.emit(relax.Call(prepare, [x2, edge_index2]))
            parts = [bb.emit(relax.TupleGetItem(graph, i)) for i in range(3)]
            out = bb.emit(relax.Call(forward, [x2, *parts, *extra]))
            bb.emit_func_output(out)
        return bb.get()
