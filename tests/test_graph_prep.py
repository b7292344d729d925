"""Input checks of compiled models (``dqc.graph_prep.check_inputs``) that need no build."""

import numpy as np
import pytest

from dqc.graph_prep import check_inputs

EDGES = np.array([[0, 1, 2], [1, 2, 3]])


def check(x):
    return check_inputs(x, EDGES, num_features=x.shape[1], max_nodes=100, max_edges=100)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_one_non_finite_value_is_rejected(bad):
    x = np.ones((4, 3), np.float32)
    x[3, 2] = bad
    with pytest.raises(ValueError, match="NaN or Inf"):
        check(x)


def test_finite_values_whose_sum_overflows_are_accepted():
    """The fast check sums x; a sum that overflows float32 must not read as bad input."""
    x = np.full((4, 3), np.finfo(np.float32).max, np.float32)
    assert not np.isfinite(x.sum())
    checked, _ = check(x)
    assert np.array_equal(checked, x)
