"""Training: input validation, overrides, and the issue's Cora accuracy bars (seed 0)."""

import pytest
import torch

from dqc.synthetic import synthetic_graph
from dqc.training import check_graph, train_model


def _with(graph, **fields):
    graph = graph.clone()
    for key, value in fields.items():
        graph[key] = value
    return graph


def test_check_graph_names_the_problem():
    good = synthetic_graph(num_nodes=50, num_features=4)
    check_graph(good)
    negative = good.edge_index.clone()
    negative[0, 0] = -1
    cases = [
        ("finite floats", _with(good, x=torch.full_like(good.x, float("nan")))),
        ("int64", _with(good, edge_index=good.edge_index.int())),
        ("shape", _with(good, edge_index=good.edge_index[:1])),
        (r"outside \[0, 50\)", _with(good, edge_index=torch.full_like(good.edge_index, 50))),
        (r"outside \[0, 50\)", _with(good, edge_index=negative)),
    ]
    for message, graph in cases:
        with pytest.raises(ValueError, match=message):
            check_graph(graph)


def test_unknown_override_is_rejected():
    with pytest.raises(ValueError, match="unknown settings"):
        train_model("synthetic", "gcn", "fp32", learning_rate=0.1)


def test_same_seed_same_model():
    data = synthetic_graph(num_nodes=200, num_features=8)
    runs = [
        train_model("synthetic", "gcn", "dq-int8", seed=3, data=data, epochs=5, progress=False)
        for _ in range(2)
    ]
    a, b = (r.model.state_dict() for r in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
@pytest.mark.parametrize(("scheme", "bar"), [("fp32", 80.0), ("dq-int8", 80.0), ("dq-int4", 76.0)])
def test_cora_gcn_reaches_the_accuracy_bar(data_root, scheme, bar):
    trained = train_model("cora", "gcn", scheme, seed=0, data_root=data_root, progress=False)
    assert trained.metrics["test_acc"] >= bar
