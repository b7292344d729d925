"""FoldQDQ: quantized float chains become integer ops, with the same results."""

import numpy as np
import pytest
from conftest import count_ops, run_relax
from dqc.passes.fold_qdq import FoldQDQ
from dqc.passes.fold_scales import FoldScales


@pytest.mark.parametrize("arch", ["gcn", "gin", "gat"])
def test_integer_program_equals_the_frozen_model(tiny, arch):
    mod, inputs, expected = tiny(arch)
    folded = FoldQDQ()(mod)
    assert count_ops(folded, "dqc.dequantize") == 1  # only the logits leave the integers
    assert count_ops(folded, "dqc.requantize") > 0 and count_ops(folded, "dqc.qmatmul") >= 2
    assert count_ops(folded, "R.matmul") == 0
    np.testing.assert_array_equal(run_relax(FoldScales()(folded), inputs), expected)


def test_float_modules_are_left_alone(tiny):
    import tvm

    mod, _, _ = tiny("gcn", "fp32")
    tvm.ir.assert_structural_equal(FoldQDQ()(mod), mod)
