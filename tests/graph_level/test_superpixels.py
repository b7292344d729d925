"""MNIST / CIFAR10 superpixel graphs: PyG downloads them, so offline the loading tests skip."""

import urllib.error

import pytest
import torch
from torch_geometric.data import Data

from dqc.datasets import DatasetError
from dqc.graph_datasets import load_graph_dataset, superpixel_features
from dqc.hparams import model_defaults, train_defaults

SIZES = {"mnist": (3, (55_000, 5_000, 10_000)), "cifar10": (5, (45_000, 5_000, 10_000))}


def test_node_input_is_intensity_then_position():
    edges = torch.tensor([[0, 1, 2], [1, 2, 1]])
    graph = Data(x=torch.tensor([[0.1], [0.5], [0.9]]), pos=torch.rand(3, 2), edge_index=edges)
    pos = graph.pos.clone()
    graph.edge_attr = torch.rand(3)
    out = superpixel_features(graph)
    assert torch.equal(out.x, torch.cat([torch.tensor([[0.1], [0.5], [0.9]]), pos], 1))
    assert out.pos is None and out.edge_attr is None
    assert out.degree_cdf.tolist() == pytest.approx([1 / 3, 1.0, 2 / 3])  # in-degrees 0, 2, 1


def test_defaults_follow_zinc():
    assert model_defaults("gin", "mnist") == model_defaults("gin", "zinc")
    assert train_defaults("cifar10", "gcn", "dq-int4") == train_defaults("zinc", "gcn", "dq-int4")


@pytest.mark.parametrize("name", sorted(SIZES))
def test_superpixel_splits(name, data_root):
    try:
        splits = load_graph_dataset(name, data_root)
    except DatasetError as err:
        if isinstance(err.__cause__, urllib.error.URLError):
            pytest.skip(f"{name} is not staged offline and PyG cannot download it here: {err}")
        raise
    features, sizes = SIZES[name]
    assert (len(splits.train), len(splits.val), len(splits.test)) == sizes
    assert (splits.num_features, splits.out_channels, splits.metric) == (features, 10, "accuracy")
    assert splits.test[0].x.shape[1] == features
