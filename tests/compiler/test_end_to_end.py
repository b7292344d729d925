"""Compiled GCN / GIN / GAT on Cora: bit-exact with the NumPy integer reference, in
agreement with the fake-quant PyTorch model, robust to odd graphs, strict on bad input."""

import numpy as np
import pytest
import torch

from dqc.checkpoint import load_checkpoint
from dqc.evaluation import evaluate_artifact
from dqc.reference import IntegerReference
from dqc.runtime import load

ARCHS = ["gcn", "gin", "gat"]
# Argmax agreement with the fake-quant model on Cora's test nodes: float sums in another
# order and fixed-point requantization move a logit by one LSB now and then; GAT also
# quantizes its attention weights to Q15.
MIN_AGREEMENT = 99.5


@pytest.mark.parametrize("arch", ARCHS)
def test_cora_parity(compiled_cora, data_root, arch):
    result = evaluate_artifact(compiled_cora(arch), "cora", data_root)
    assert result["bitexact_with_reference"] is True
    assert result["agreement"] >= MIN_AGREEMENT
    # At most 3 of the 1,000 test nodes (rounded: 77.9 - 77.6 is 0.30000000000001 in floats).
    assert round(abs(result["accuracy"] - result["fakequant_accuracy"]), 6) <= 0.3


def test_fp32_build_matches_the_float_model(compiled_cora, trained_cora, cora):
    model = load(compiled_cora("gcn", "fp32"))
    expected = load_checkpoint(trained_cora("gcn", "fp32")).model(cora.x, cora.edge_index)
    logits = model.predict(cora.x.numpy(), cora.edge_index.numpy())
    np.testing.assert_allclose(logits, expected.detach().numpy(), rtol=1e-4, atol=1e-4)


GRAPHS = {
    "empty edge set": np.zeros((2, 0), np.int64),
    "isolated nodes": np.array([[0, 1], [1, 0]]),
    "self-loops and duplicates": np.array([[0, 0, 1, 1, 2, 2, 2, 5], [0, 1, 1, 2, 3, 3, 3, 5]]),
    "star (one node, every in-edge)": np.stack([np.arange(1, 6), np.zeros(5, np.int64)]),
}


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("graph", GRAPHS, ids=list(GRAPHS))
def test_odd_graphs_match_reference_and_fake_quant(compiled_cora, trained_cora, arch, graph):
    model, checkpoint = load(compiled_cora(arch)), trained_cora(arch)
    rng = np.random.default_rng(0)
    x = (rng.random((6, 1433)) < 0.02).astype(np.float32)
    edges = GRAPHS[graph]
    logits = model.predict(x, edges)
    assert np.array_equal(logits, IntegerReference(checkpoint).predict(x, edges))
    with torch.no_grad():
        fake = load_checkpoint(checkpoint).model(torch.from_numpy(x), torch.from_numpy(edges))
    assert (logits.argmax(1) == fake.numpy().argmax(1)).mean() >= 5 / 6


@pytest.mark.parametrize("arch", ARCHS)
def test_edge_order_and_node_relabelling(compiled_cora, cora, arch):
    model = load(compiled_cora(arch))
    x, edges = cora.x.numpy(), cora.edge_index.numpy()
    logits = model.predict(x, edges)
    rng = np.random.default_rng(1)
    shuffled = edges[:, rng.permutation(edges.shape[1])]
    assert np.array_equal(model.predict(x, shuffled), logits)
    perm = rng.permutation(x.shape[0])  # new id i is old node perm[i]
    inverse = np.argsort(perm)
    relabelled = model.predict(x[perm], inverse[edges])
    assert np.array_equal(relabelled, logits[perm])


BAD_INPUTS = {
    "edge_index refers to node 9": lambda x, e: (x, np.array([[0], [9]])),
    "negative node id": lambda x, e: (x, np.array([[-1], [0]])),
    "edge_index must be int64": lambda x, e: (x, e.astype(np.float32)),
    r"edge_index must have shape \[2, num_edges\]": lambda x, e: (x, e.reshape(1, -1)),
    "x must be float32": lambda x, e: (x.astype(np.float64), e),
    r"x must have shape \[num_nodes, 1433\]": lambda x, e: (x[:, :10], e),
    "NaN or Inf": lambda x, e: (np.where(x > 0.5, np.inf, x).astype(np.float32), e),
    "graph is empty": lambda x, e: (x[:0], np.zeros((2, 0), np.int64)),
    "over the compiled bound": lambda x, e: (np.zeros((5000, 1433), np.float32), e),
}


@pytest.mark.parametrize("message", BAD_INPUTS, ids=list(BAD_INPUTS))
def test_bad_inputs_raise_value_errors(compiled_cora, tmp_path, message):
    model = load(compiled_cora("gcn"))
    assert model.manifest["checks_node_ids"]  # bad ids reach the binary, which stops on them
    model.manifest["bounds"]["max_nodes"] = 4096  # a small bound to test the check
    x = np.random.default_rng(0).random((9, 1433), dtype=np.float32)
    edges = np.array([[0, 1, 2], [1, 2, 3]])
    with pytest.raises(ValueError, match=message):
        model.predict(*BAD_INPUTS[message](x, edges))


@pytest.mark.parametrize("arch,scheme", [(a, "dq-int8") for a in ARCHS] + [("gcn", "fp32")])
def test_one_nan_in_the_last_row_is_rejected(compiled_cora, cora, arch, scheme):
    """Integer builds flag non-finite rows in the kernel that quantizes x (no host pass over
    x); FP32 builds check on the host. Either way one NaN is caught, by ``predict`` and by
    ``forward`` on a prepared graph."""
    model = load(compiled_cora(arch, scheme))
    assert ("non_finite_rows" in model.manifest["outputs"]) == (scheme != "fp32")
    x, edges = cora.x.numpy().copy(), cora.edge_index.numpy()
    x[-1, -1] = np.nan
    with pytest.raises(ValueError, match=f"NaN or Inf( \\(row {x.shape[0] - 1}\\))?$"):
        model.predict(x, edges)
    if scheme != "fp32":
        with pytest.raises(ValueError, match="NaN or Inf"):
            model.forward(x, model.prepare(x, edges))


def test_int8_dense_layers_use_vnni(trained_cora, tmp_path):
    """Both GCN dense layers take the VNNI kernel (weights are constants after folding) when
    the input is read densely."""
    from dqc.compiler import compile_checkpoint

    compile_checkpoint(
        trained_cora("gcn"),
        tmp_path / "out",
        target="x86-avx512vnni",
        dump_ir=tmp_path / "ir",
        sparse_input="off",
    )
    final = sorted((tmp_path / "ir").iterdir())[-1].read_text()
    kernels = [line for line in final.splitlines() if line.lstrip().startswith("def ")]
    assert sum("qmatmul_vnni" in k for k in kernels) == 2
