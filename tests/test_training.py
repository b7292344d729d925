"""Training: input validation, overrides, and the issue's Cora accuracy bars (seed 0)."""

import dataclasses

import pytest
import torch

from dqc.hparams import MINIBATCH_FIELDS, train_defaults
from dqc.models.quant_points import quantization_points
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


@pytest.mark.parametrize("arch", ["gcn", "gat"])
def test_minmax_weight_range_covers_every_weight(arch):
    """``weight_range="minmax"``: every weight quantizer tracks its weight's true extremes,
    so a training forward clips no weight; by default the scheme's percentile tracker
    stays."""
    data = synthetic_graph(num_nodes=200, num_features=64)
    names = {"weight": "lin.weight", "attention": "att"}

    def weight_points(weight_range):
        model = train_model(
            "synthetic",
            arch,
            "dq-int8",
            data=data,
            epochs=3,
            progress=False,
            weight_range=weight_range,
        ).model
        model.train()
        model(data.x, data.edge_index)
        return [
            (quantizer, model.get_submodule(layer).get_parameter(names[role]).detach())
            for (layer, role), quantizer in quantization_points(model).items()
            if role in names
        ]

    minmax = weight_points("minmax")
    assert len(minmax) == {"gcn": 2, "gat": 4}[arch]
    for quantizer, w in minmax:
        assert quantizer.tracker == "minmax"
        assert quantizer.min_val <= w.min() and quantizer.max_val >= w.max()  # none clipped
    assert all(q.tracker == "percentile" for q, _ in weight_points(None))
    with pytest.raises(ValueError, match="weight_range"):
        train_model("synthetic", arch, "dq-int8", data=data, epochs=1, weight_range="ema")


def test_result_keys_of_older_settings_stay_the_same():
    """Cached results keep their keys: node records have no minibatch fields and the weight
    range shows only when it is not the scheme's."""
    settings = train_defaults("cora", "gcn", "dq-int8")
    node = settings.record(graph_level=False)
    assert set(node) == {"lr", "weight_decay", "epochs", "p_min", "p_max"}
    assert set(MINIBATCH_FIELDS) <= set(settings.record(graph_level=True))
    minmax = dataclasses.replace(settings, weight_range="minmax")
    assert minmax.record(graph_level=False)["weight_range"] == "minmax"


@pytest.mark.slow
@pytest.mark.parametrize(("scheme", "bar"), [("fp32", 80.0), ("dq-int8", 80.0), ("dq-int4", 76.0)])
def test_cora_gcn_reaches_the_accuracy_bar(data_root, scheme, bar):
    trained = train_model("cora", "gcn", scheme, seed=0, data_root=data_root, progress=False)
    assert trained.metrics["test_acc"] >= bar
