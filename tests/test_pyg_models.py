"""The stock-PyG peer ``dqc bench`` times computes the same function as the dqc model."""

import pytest
import torch
from torch_geometric.data import Batch
from torch_geometric.utils import add_remaining_self_loops

from dqc.models import ARCHS, ModelConfig, build_model
from dqc.pyg_models import to_pyg
from dqc.synthetic import synthetic_graph


def _graphs(count: int) -> list:
    return [synthetic_graph(num_nodes=20 + 7 * i, num_features=8, seed=i) for i in range(count)]


@pytest.mark.parametrize("prepared", [False, True])
@pytest.mark.parametrize("arch", ARCHS)
def test_node_model_twin(arch, prepared):
    data = _graphs(1)[0]
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch, "fp32", 8, 16, 3, 0.0, heads=2)).eval()
    edges = data.edge_index
    if prepared and arch == "gat":
        edges = add_remaining_self_loops(edges, num_nodes=data.num_nodes)[0]
    with torch.no_grad():
        expected = model(data.x, data.edge_index)
        got = to_pyg(model, arch, prepared)(data.x, edges)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("arch", "pooling", "batch_norm", "norm_after_relu"),
    [(arch, "mean", False, False) for arch in ARCHS]
    + [("gin", "add", False, False), ("gin", "mean", True, False), ("gin", "mean", True, True)],
)
def test_graph_model_twin(arch, pooling, batch_norm, norm_after_relu):
    batch = Batch.from_data_list(_graphs(4))
    torch.manual_seed(0)
    config = ModelConfig(
        arch, "fp32", 8, 16, 1, 0.0, 2, 3, "graph", pooling, batch_norm, norm_after_relu
    )
    model = build_model(config)
    with torch.no_grad():  # training-mode passes move BatchNorm's running statistics
        for _ in range(3):
            model(batch.x, batch.edge_index, batch.batch, batch.num_graphs)
    model.eval()
    with torch.no_grad():
        expected = model(batch.x, batch.edge_index, batch.batch, batch.num_graphs)
        got = to_pyg(model, arch)(batch.x, batch.edge_index, batch.batch)
    assert got.shape == (4, 1)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
