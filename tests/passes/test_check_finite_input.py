"""CheckFiniteInput: the kernel that quantizes x also flags its NaN / Inf rows, exactly, and
the model's own outputs do not change."""

import numpy as np
import pytest
import tvm
from conftest import run_relax_outputs
from dqc.passes.check_finite_input import ATTR, CheckFiniteInput
from dqc.passes.lower_message_passing import LowerMessagePassing

from dqc.pipeline import quantize_passes


@pytest.mark.parametrize("arch", ["gcn", "gin", "gat"])
def test_flags_exactly_the_non_finite_rows(tiny, arch):
    mod, inputs, _ = tiny(arch)
    lowered = tvm.transform.Sequential([*quantize_passes(), LowerMessagePassing()])(mod)
    checked = CheckFiniteInput()(lowered)
    index = int(checked["main"].attrs[ATTR])
    assert index == len(run_relax_outputs(lowered, inputs))  # the flags follow the model's outputs

    x = inputs[0].copy()
    plain, flagged = (
        run_relax_outputs(lowered, [x, *inputs[1:]]),
        run_relax_outputs(checked, [x, *inputs[1:]]),
    )
    for before, after in zip(plain, flagged[:index], strict=True):
        np.testing.assert_array_equal(after, before)
    assert flagged[index].dtype == np.int8 and not flagged[index].any()

    bad_rows = [0, 7, x.shape[0] - 1]
    for row, value in zip(bad_rows, [np.nan, np.inf, -np.inf], strict=True):
        x[row, row % x.shape[1]] = value
    x[3, 0] = np.finfo(np.float32).max  # finite extremes are not flagged
    x[4, 1] = np.finfo(np.float32).smallest_subnormal
    flags = run_relax_outputs(checked, [x, *inputs[1:]])[index]
    assert np.flatnonzero(flags).tolist() == bad_rows


def test_float_models_are_left_alone(tiny):
    mod, _, _ = tiny("gcn", "fp32")
    checked = CheckFiniteInput()(mod)
    assert ATTR not in (checked["main"].attrs or {})
    assert checked.same_as(mod)  # returned untouched
