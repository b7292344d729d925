"""Input checks of compiled models (``dqc.graph_prep.check_inputs``) that need no build."""

import numpy as np
import pytest

from dqc.graph_prep import check_inputs

EDGES = np.array([[0, 1, 2], [1, 2, 3]])


def check(x):
    return check_inputs(x, EDGES, num_features=x.shape[1], max_nodes=10**6, max_edges=100)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("size", [12, 300_000])  # short, and long enough for blocked BLAS
def test_one_non_finite_value_is_rejected(bad, size):
    x = np.ones((size // 3, 3), np.float32)
    x[size // 6, 2] = bad
    with pytest.raises(ValueError, match="NaN or Inf"):
        check(x)


def test_finite_values_whose_squares_overflow_are_accepted():
    """The fast check sums squares; a sum that overflows float32 must not read as bad input."""
    x = np.full((4, 3), 1e20, np.float32)
    flat = x.reshape(-1)
    assert not np.isfinite(np.dot(flat, flat))
    checked, _ = check(x)
    assert np.array_equal(checked, x)


def test_node_ids_are_left_to_a_binary_that_checks_them_unless_degrees_are_counted():
    x = np.ones((4, 3), np.float32)
    bad = np.array([[0, 1, 7], [1, 2, 3]])
    kwargs = dict(num_features=3, max_nodes=10**6, max_edges=100, check_ids=False)
    checked, _ = check_inputs(x, bad, **kwargs)  # the binary stops on node 7 instead
    assert checked is x
    with pytest.raises(ValueError, match="refers to node 7"):  # counting needs valid ids
        check_inputs(x, bad, max_in_degree=2, **kwargs)
