"""Compiled graph-level models (mean and add pooling, readout, batches): bit-exact with the integer
reference, close to the fake-quant model, strict about the batch vector."""

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch

from dqc.checkpoint import load_checkpoint
from dqc.compiler import compile_checkpoint
from dqc.evaluation import evaluate_artifact
from dqc.pooling import FRAC_BITS, graph_pointer, mean_fixed, segment_sums
from dqc.reference import IntegerReference
from dqc.runtime import load


@pytest.fixture(scope="module")
def compiled_zinc(trained_zinc, tmp_path_factory):
    cache = {}

    def get(arch: str, scheme: str = "dq-int8", pooling: str = "mean", batch_norm=False):
        key = (arch, scheme, pooling, batch_norm)
        if key not in cache:
            out = tmp_path_factory.mktemp(f"zinc-{arch}-{scheme}-{pooling}")
            compile_checkpoint(trained_zinc(*key), out)
            cache[key] = out
        return cache[key]

    return get


def test_mean_fixed_is_the_rounded_mean():
    values = np.array([[1, -3], [2, -4], [4, 7], [-1, 0]])
    graph_ptr = np.array([0, 2, 2, 4])  # graphs of 2, 0 and 2 nodes
    expected = np.array([[1.5, -3.5], [0, 0], [1.5, 3.5]]) * (1 << FRAC_BITS)
    np.testing.assert_array_equal(mean_fixed(values, graph_ptr), expected)
    odd = mean_fixed(np.array([[1], [1], [0]]), np.array([0, 3]))  # 2/3 * 256 = 170.67
    assert odd.tolist() == [[171]]
    assert graph_pointer(np.array([0, 0, 2]), 4).tolist() == [0, 2, 2, 3, 3]
    assert segment_sums(values, graph_ptr).tolist() == [[3, -7], [0, 0], [3, 7]]


@pytest.mark.parametrize(
    ("arch", "scheme", "pooling", "batch_norm"),
    [
        ("gcn", "dq-int8", "mean", False),
        ("gin", "dq-int4", "mean", False),
        ("gat", "dq-int8", "mean", False),
        ("gin", "dq-int8", "add", False),
        ("gin", "dq-int8", "mean", True),
        ("gin", "dq-int4", "mean", "after_relu"),
    ],
)
def test_batches_match_reference_and_fake_quant(
    compiled_zinc, trained_zinc, zinc, arch, scheme, pooling, batch_norm
):
    key = (arch, scheme, pooling, batch_norm)
    model = load(compiled_zinc(*key))
    batch = Batch.from_data_list(zinc.test[:200])
    inputs = (batch.x.numpy(), batch.edge_index.numpy(), batch.batch.numpy())
    out = model.predict(*inputs)
    assert out.shape == (200, 1)
    reference = IntegerReference(trained_zinc(*key)).predict(*inputs)
    np.testing.assert_array_equal(out, reference)
    fake_quant = load_checkpoint(trained_zinc(*key)).model
    assert fake_quant.pooling == pooling
    with torch.no_grad():
        expected = fake_quant(batch.x, batch.edge_index, batch.batch, batch.num_graphs).numpy()
    # one output LSB now and then: float sums in another order, fixed-point requantize
    step = fake_quant.readout[1].quant.feature.qparams().scale
    assert np.abs(out - expected).max() <= 2 * step + 1e-6


def test_one_graph_and_empty_graphs_in_a_batch(compiled_zinc, zinc):
    model = load(compiled_zinc("gcn"))
    a, b = zinc.test[0], zinc.test[1]
    alone = [model.predict(g.x.numpy(), g.edge_index.numpy()) for g in (a, b)]
    batch = Batch.from_data_list([a, b])
    ids = batch.batch.numpy().copy()
    ids[ids == 1] = 3  # graphs 1 and 2 are empty
    out = model.predict(batch.x.numpy(), batch.edge_index.numpy(), ids)
    assert out.shape == (4, 1)
    np.testing.assert_array_equal(out[[0, 3]], np.concatenate(alone))


def test_bad_batch_vectors_are_named(compiled_zinc, zinc):
    model = load(compiled_zinc("gcn"))
    g = zinc.test[0]
    x, edge_index, n = g.x.numpy(), g.edge_index.numpy(), g.num_nodes
    cases = {
        "non-decreasing": np.arange(n)[::-1].copy(),
        "shape": np.zeros(n + 1, np.int64),
        "int64": np.zeros(n, np.float32),
        "negative": np.full(n, -1),
    }
    for message, batch in cases.items():
        with pytest.raises(ValueError, match=message):
            model.predict(x, edge_index, batch)


@pytest.mark.parametrize(
    ("pooling", "batch_norm"), [("mean", False), ("add", True), ("mean", "after_relu")]
)
def test_fp32_build_matches_the_float_model(compiled_zinc, trained_zinc, zinc, pooling, batch_norm):
    key = ("gin", "fp32", pooling, batch_norm)
    model = load(compiled_zinc(*key))
    batch = Batch.from_data_list(zinc.test[:100])
    out = model.predict(batch.x.numpy(), batch.edge_index.numpy(), batch.batch.numpy())
    with torch.no_grad():
        float_model = load_checkpoint(trained_zinc(*key)).model
        expected = float_model(batch.x, batch.edge_index, batch.batch, batch.num_graphs)
    np.testing.assert_allclose(out, expected.numpy(), rtol=1e-4, atol=1e-4)


def test_dqc_run_reports_parity_on_the_test_split(compiled_zinc, data_root):
    result = evaluate_artifact(compiled_zinc("gcn"), None, data_root)
    assert result["metric"] == "mae" and result["graphs"] == 1000
    assert result["bitexact_with_reference"] is True
    assert abs(result["value"] - result["fakequant_value"]) <= 0.005
