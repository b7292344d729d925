"""The three architectures: stable quantization-point names, masking, eval on the grid."""

import pytest
import torch

from dqc.models import ModelConfig, build_model, quantization_points
from dqc.quantizer import Quantizer
from dqc.synthetic import synthetic_graph

GRAPH = synthetic_graph(num_nodes=300, num_features=16, seed=1)

POINTS = {
    "gcn": ["input", "weight", "feature", "norm", "message", "aggregate", "update"],
    "gat": ["input", "weight", "feature", "attention", "alpha", "message", "aggregate", "update"],
    "gin": ["input", "weight", "feature", "message", "aggregate", "update"],
}


def _model(arch, scheme="dq-int8"):
    torch.manual_seed(0)
    heads = 2 if arch == "gat" else 1
    return build_model(ModelConfig(arch, scheme, 16, 8, 5, 0.5, heads))


def _train_steps(model, steps=3, protect_prob=0.3):
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    model.train()
    for _ in range(steps):
        protect = torch.rand(GRAPH.num_nodes) < protect_prob
        opt.zero_grad()
        model(GRAPH.x, GRAPH.edge_index, protect).sum().backward()
        opt.step()


@pytest.mark.parametrize("arch", ["gcn", "gat", "gin"])
def test_quantization_points_have_stable_names(arch):
    points = quantization_points(_model(arch))
    for layer in ("convs.0", "convs.1"):
        assert [role for (name, role) in points if name == layer] == POINTS[arch]
    if arch == "gin":  # the MLP's QuantLinear after the first linear
        assert ("convs.0.mlp.1", "weight") in points
    assert all(isinstance(q, Quantizer) for q in points.values())
    assert quantization_points(_model(arch, "fp32")) == {}


@pytest.mark.parametrize("arch", ["gcn", "gat", "gin"])
def test_training_calibrates_and_eval_output_is_on_the_grid(arch):
    model = _model(arch, "dq-int4")
    _train_steps(model)
    points = quantization_points(model)
    assert all(q.calibrated for q in points.values())
    model.eval()
    out = model(GRAPH.x, GRAPH.edge_index)
    qp = points[("convs.1", "update")].qparams()
    assert qp.bits == 4
    codes = out / qp.scale + qp.zero_point
    assert torch.allclose(codes, codes.round(), atol=1e-3)  # logits lie on the INT4 grid
    assert torch.equal(out, model(GRAPH.x, GRAPH.edge_index))  # eval is deterministic


@pytest.mark.parametrize("arch", ["gcn", "gat", "gin"])
def test_all_protected_steps_keep_float_and_leave_ranges_empty(arch):
    model = _model(arch)
    _train_steps(model, steps=2, protect_prob=1.1)  # every node protected
    masked_roles = ("input", "feature", "alpha", "message", "aggregate", "update")
    masked = [
        q
        for (layer, role), q in quantization_points(model).items()
        if layer in ("convs.0", "convs.1") and role in masked_roles
    ]
    assert masked and not any(q.calibrated for q in masked)  # stats never saw a protected row
    _train_steps(model, steps=1, protect_prob=0.0)
    assert all(q.calibrated for q in quantization_points(model).values())


@pytest.mark.parametrize("arch", ["gcn", "gat", "gin"])
def test_empty_edge_set_and_isolated_nodes(arch):
    model = _model(arch, "qat-int8")
    _train_steps(model, steps=1)
    model.eval()
    out = model(GRAPH.x[:10], torch.zeros(2, 0, dtype=torch.long))
    assert out.shape == (10, 5) and torch.isfinite(out).all()


def test_folded_batch_norm_trains_and_deploys_like_batch_norm():
    from dqc.models.quant_linear import QuantLinear
    from dqc.schemes import get_scheme

    torch.manual_seed(0)
    folded = QuantLinear(6, 4, get_scheme("fp32"), batch_norm=True)
    plain = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.BatchNorm1d(4))
    plain[0].load_state_dict(folded.lin.state_dict())
    with torch.no_grad():
        folded.bn.weight.uniform_(0.5, 2.0)
        folded.bn.bias.uniform_(-1.0, 1.0)
    plain[1].load_state_dict(folded.bn.state_dict())
    for _ in range(3):
        x = torch.randn(32, 6) * 3 + 1
        torch.testing.assert_close(folded(x), plain(x), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(folded.bn.running_var, plain[1].running_var)
    torch.testing.assert_close(folded.bn.running_mean, plain[1].running_mean)
    folded.eval(), plain.eval()
    x = torch.randn(8, 6)
    torch.testing.assert_close(folded(x), plain(x), rtol=1e-5, atol=1e-5)


def test_norm_after_relu_is_the_authors_gin_layout():
    """BatchNorm after the MLP's ReLU, kept (not folded); no ReLU between layers, so every
    later input quantizer (and the readout's) is signed; deployed as a scale and shift."""
    with pytest.raises(ValueError, match="needs batch_norm and task 'graph'"):
        build_model(ModelConfig("gin", "dq-int8", 4, 8, 2, 0.0, num_layers=2, norm_after_relu=True))
    config = ModelConfig("gin", "dq-int4", 4, 8, 2, 0.0, 1, 3, "graph", "mean", True, True)
    model = build_model(config)
    convs = model.body.convs
    assert all(conv.norm is not None and conv.mlp[1].bn is None for conv in convs)
    assert [conv.quant.input.signed for conv in convs[1:]] == [True, True]
    assert model.readout[0].quant.input.signed and not model.readout[1].quant.input.signed
    conv = convs[0]
    with torch.no_grad():
        conv.norm.running_mean.uniform_(-1.0, 1.0)
        conv.norm.running_var.uniform_(0.5, 2.0)
        conv.norm.weight.uniform_(0.5, 2.0)
    conv.eval()
    x = torch.randn(16, 8)
    torch.testing.assert_close(
        conv.norm(torch.relu(x)), torch.relu(x) * conv.norm_scale + conv.norm_shift
    )
