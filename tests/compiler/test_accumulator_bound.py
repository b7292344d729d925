"""The int32 aggregation accumulator: exact on a 100,000-edge star, and its documented bound
(``dqc.graph_prep.accumulator_in_degree_bound``) enforced on input."""

import numpy as np
import pytest

from dqc.checkpoint import save_checkpoint
from dqc.compiler import compile_checkpoint
from dqc.graph_prep import accumulator_in_degree_bound
from dqc.reference import IntegerReference
from dqc.runtime import load
from dqc.synthetic import synthetic_graph
from dqc.training import train_model

STAR_EDGES = 100_000
FEATURES = 16


@pytest.fixture(scope="module")
def compiled_small(tmp_path_factory):
    """Per arch, a briefly trained DQ-INT8 model on 16 synthetic features, compiled."""
    data = synthetic_graph(num_nodes=300, num_features=FEATURES, seed=5)
    folder = tmp_path_factory.mktemp("small")

    def get(arch: str) -> tuple:
        checkpoint, out = folder / f"{arch}.pt", folder / arch
        if not out.exists():
            trained = train_model(
                "synthetic", arch, "dq-int8", data=data, epochs=10, progress=False
            )
            save_checkpoint(
                checkpoint, trained.model, trained.config, "synthetic", trained.training, {}
            )
            compile_checkpoint(checkpoint, out)
        return load(out), IntegerReference(checkpoint)

    return get


def _star(num_leaves: int) -> tuple[np.ndarray, np.ndarray]:
    """Node 0 receives an edge from each of ``num_leaves`` leaves; features push every code
    to the top of its range so the hub's sum is as large as the data allows."""
    x = np.full((num_leaves + 1, FEATURES), 1e3, np.float32)
    edges = np.stack([np.arange(1, num_leaves + 1), np.zeros(num_leaves, np.int64)])
    return x, edges


@pytest.mark.parametrize("arch", ["gcn", "gin", "gat"])
def test_star_with_100k_in_edges_matches_reference(compiled_small, arch):
    model, reference = compiled_small(arch)
    x, edges = _star(STAR_EDGES)
    assert np.array_equal(model.predict(x, edges), reference.predict(x, edges))


def test_bound_is_the_largest_exact_int32_sum():
    for bits in (4, 8):
        code = 2**bits - 1
        bound = accumulator_in_degree_bound(bits)
        assert bound * code <= 2**31 - 1 < (bound + 1) * code
    assert accumulator_in_degree_bound(8) == 8_421_504


def test_in_degree_over_the_bound_is_refused(compiled_small):
    model, _ = compiled_small("gcn")
    assert model.manifest["bounds"]["max_in_degree"] == accumulator_in_degree_bound(8)
    model.manifest["bounds"]["max_in_degree"] = 1_000  # a small bound to exercise the check
    x, edges = _star(999)  # 999 in-edges + the self-loop: exactly at the bound
    model.predict(x, edges)
    x, edges = _star(1_000)
    with pytest.raises(ValueError, match="node 0 has 1001 in-edges"):
        model.predict(x, edges)
