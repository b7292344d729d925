"""Dataset loading: Planetoid statistics, and the data root is never written to."""

import pytest

from dqc.datasets import load_node_dataset


def _tree(root):
    return sorted(p.relative_to(root) for p in root.rglob("*"))


@pytest.mark.parametrize(
    ("name", "nodes", "features", "classes"), [("cora", 2708, 1433, 7), ("citeseer", 3327, 3703, 6)]
)
def test_planetoid_public_split(data_root, name, nodes, features, classes):
    before = _tree(data_root)
    data = load_node_dataset(name, data_root)
    assert (data.num_nodes, data.num_features, int(data.y.max()) + 1) == (nodes, features, classes)
    assert int(data.val_mask.sum()) == 500 and int(data.test_mask.sum()) == 1000
    assert _tree(data_root) == before  # processed/ went to the cache, not beside raw/


def test_unknown_dataset():
    with pytest.raises(ValueError, match="unknown dataset 'pubmed'"):
        load_node_dataset("pubmed")
