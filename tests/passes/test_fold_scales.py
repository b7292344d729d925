"""FoldScales: real requantize multipliers and biases become fixed point."""

import numpy as np
import pytest
from dqc.passes.fold_scales import FoldScales
from dqc.passes.legalize import DQC_LEGALIZE_MAP
from tvm import relax

from dqc import relax_ops
from dqc._tvm import constant_value
from dqc.fixed_point import FixedPoint


def _module(bias):
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType([4, 3], "int32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            args = [x] + ([relax.const(bias, "float64")] if bias is not None else [])
            out = bb.emit(
                relax_ops.call(
                    "dqc.requantize",
                    args,
                    zero_points=[2],
                    real_multipliers=[0.0123],
                    zero_point=-3,
                    qmin=-128,
                    qmax=127,
                    out_dtype="int8",
                )
            )
            out = bb.emit_output(out)
        bb.emit_func_output(out)
    return bb.get()


def _requantize_call(mod):
    return mod["main"].body.blocks[0].bindings[0].value


def test_multipliers_shift_and_bias_are_fixed_point():
    bias = np.array([0.5, -1.25, 3.0])
    call = _requantize_call(FoldScales()(_module(bias)))
    expected = FixedPoint.from_reals([0.0123], 3.0)
    assert [int(m) for m in call.attrs["multipliers"]] == list(expected.multipliers)
    assert int(call.attrs["shift"]) == expected.shift and "real_multipliers" not in call.attrs
    folded_bias = call.args[1]
    assert folded_bias.ty.dtype == "int64"
    np.testing.assert_array_equal(constant_value(folded_bias), expected.bias(bias))


def test_lowering_needs_fold_scales():
    with pytest.raises(Exception, match="run FoldScales"):
        relax.transform.LegalizeOps(customize_legalize_map=DQC_LEGALIZE_MAP)(_module(None))
