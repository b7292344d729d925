"""AddGraphPrep: the compiled program builds the same CSR as the NumPy preparation."""

import re

import numpy as np
import pytest
import tvm
from conftest import run_relax
from dqc.passes.add_graph_prep import AddGraphPrep
from dqc.passes.legalize import DQC_LEGALIZE_MAP
from tvm import relax

from dqc._tvm import tensor
from dqc.graph_prep import prepare_graph
from dqc.kernels.graph_prep import NODE_ID_ERROR

EDGES = np.array([[3, 0, 2, 2, 1, 0, 4, 2], [0, 0, 3, 1, 1, 1, 0, 2]])  # loops, duplicates


@pytest.mark.parametrize("self_loops", ["add", "remove"])
def test_prepare_matches_numpy_and_main_matches_forward(tiny, self_loops):
    mod, inputs, _ = tiny("gcn" if self_loops == "add" else "gin")
    mod = AddGraphPrep(self_loops)(mod)
    assert {gv.name_hint for gv in mod.get_global_vars()} >= {"main", "prepare", "forward"}
    lowered = relax.transform.LegalizeOps(customize_legalize_map=DQC_LEGALIZE_MAP)(mod)
    vm = relax.VirtualMachine(tvm.compile(lowered, tvm.target.Target({"kind": "llvm"})), tvm.cpu())
    x = np.zeros((6, 16), np.float32)
    src, dst, indptr = (t.numpy() for t in vm["prepare"](tensor(x), tensor(EDGES)))
    expected = prepare_graph(EDGES, 6, self_loops)
    np.testing.assert_array_equal(indptr, expected.indptr)
    np.testing.assert_array_equal(src, expected.src)  # same edges, same (stable) order
    np.testing.assert_array_equal(dst, expected.dst)

    x, src, dst, indptr = inputs  # the prepared graph: re-preparing it changes nothing
    direct = run_relax(mod, [x, src, dst, indptr], "forward")
    np.testing.assert_array_equal(run_relax(mod, [x, np.stack([src, dst])], "main"), direct)


@pytest.mark.parametrize("bad_id", [6, -1, 2**40])
@pytest.mark.parametrize("row", [0, 1])  # a source, a target
def test_prepare_stops_on_a_node_id_out_of_range(tiny, bad_id, row):
    """The kernel checks ids before it scatters by them: no write out of bounds, an error
    the runtime turns into a ValueError."""
    mod, _, _ = tiny("gcn")
    lowered = relax.transform.LegalizeOps(customize_legalize_map=DQC_LEGALIZE_MAP)(
        AddGraphPrep("add")(mod)
    )
    vm = relax.VirtualMachine(tvm.compile(lowered, tvm.target.Target({"kind": "llvm"})), tvm.cpu())
    edges = EDGES.copy()
    edges[row, 3] = bad_id
    with pytest.raises(RuntimeError, match=re.escape(NODE_ID_ERROR)):
        vm["prepare"](tensor(np.zeros((6, 16), np.float32)), tensor(edges))
