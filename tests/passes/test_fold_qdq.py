"""FoldQDQ: quantized float chains become integer ops, with the same results."""

import numpy as np
import pytest
import tvm
from conftest import count_ops, run_relax
from dqc.passes.fold_qdq import FoldQDQ
from dqc.passes.fold_scales import FoldScales

from dqc import relax_ops


@pytest.mark.parametrize("arch", ["gcn", "gin", "gat"])
def test_integer_program_equals_the_frozen_model(tiny, arch):
    mod, inputs, expected = tiny(arch)
    folded = FoldQDQ()(mod)
    assert count_ops(folded, "dqc.dequantize") == 1  # only the logits leave the integers
    assert count_ops(folded, "dqc.requantize") > 0 and count_ops(folded, "dqc.qmatmul") >= 2
    assert count_ops(folded, "R.matmul") == 0
    np.testing.assert_array_equal(run_relax(FoldScales()(folded), inputs), expected)


def test_float_modules_are_left_alone(tiny):
    import tvm

    mod, _, _ = tiny("gcn", "fp32")
    tvm.ir.assert_structural_equal(FoldQDQ()(mod), mod)


def test_batch_norm_after_relu_becomes_a_per_channel_requantize(trained_zinc, zinc):
    """GIN's BatchNorm after the ReLU (a per-channel scale and shift) folds into the update's
    requantize, one multiplier per channel: no float op is left but the logits' dequantize."""
    import torch
    from torch_geometric.data import Batch

    from dqc.checkpoint import load_checkpoint
    from dqc.frontend.export import GraphBounds, export_program, import_program
    from dqc.frontend.freeze import freeze
    from dqc.graph_prep import prepare_graph
    from dqc.pooling import graph_pointer

    model = load_checkpoint(trained_zinc("gin", "dq-int8", "mean", "after_relu")).model
    frozen = freeze(model, "gin")
    batch = Batch.from_data_list(zinc.test[:20])
    graph = prepare_graph(batch.edge_index.numpy(), batch.num_nodes, "remove")
    ptr = graph_pointer(batch.batch.numpy(), 20)
    inputs = [batch.x.numpy(), graph.src, graph.dst, graph.indptr, ptr]
    expected = frozen(*(torch.from_numpy(a) for a in inputs)).numpy()
    mod = import_program(export_program(frozen, batch.x.size(1), GraphBounds(), True))
    folded = FoldScales()(FoldQDQ()(mod))
    assert count_ops(folded, "dqc.dequantize") == 1
    assert count_ops(folded, "R.multiply") == 0 and count_ops(folded, "R.nn.relu") == 0
    per_channel = [
        call
        for f in folded.functions.values()
        if hasattr(f, "body")
        for call in _calls(f, "dqc.requantize")
        if any(isinstance(m, tvm.ir.Array) for m in call.attrs["multipliers"])
    ]
    assert len(per_channel) == len(model.body.convs)
    np.testing.assert_array_equal(run_relax(folded, inputs), expected)


def _calls(func, name):
    found = []
    tvm.relax.analysis.post_order_visit(
        func, lambda e: found.append(e) if relax_ops.is_op(e, name) else None
    )
    return found
