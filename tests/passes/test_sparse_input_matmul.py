"""SparseInputMatmul: quantized models multiply their input in one sparse kernel, with the
same outputs and NaN / Inf flags bit for bit; float models stay as they are."""

import numpy as np
import pytest
import tvm
from conftest import run_relax_outputs
from dqc.passes.check_finite_input import CheckFiniteInput
from dqc.passes.lower_message_passing import LowerMessagePassing
from dqc.passes.sparse_input_matmul import SparseInputMatmul
from tvm import relax

from dqc.pipeline import quantize_passes


def _checked(mod) -> tvm.IRModule:
    passes = [*quantize_passes(), LowerMessagePassing(), CheckFiniteInput()]
    return tvm.transform.Sequential([*passes, relax.transform.FoldConstant()])(mod)


def _kernels(mod) -> set[str]:
    return {gv.name_hint for gv, f in mod.functions.items() if isinstance(f, tvm.tirx.PrimFunc)}


def _text(mod) -> str:
    return mod["main"].script(show_meta=False)


@pytest.mark.parametrize("arch", ["gcn", "gat", "gin"])
@pytest.mark.parametrize("scheme", ["dq-int8", "dq-int4"])
def test_same_outputs_and_flags_from_one_kernel(tiny, arch, scheme):
    mod, inputs, _ = tiny(arch, scheme)
    checked = _checked(mod)
    sparse = SparseInputMatmul()(checked)
    assert "dqc_sparse_input_qmatmul" in _kernels(sparse)
    assert "dqc_quantize_checked" not in _kernels(sparse)
    assert _text(sparse).count("dqc.qmatmul") == _text(checked).count("dqc.qmatmul") - 1

    rng = np.random.default_rng(0)
    x = inputs[0] * (rng.random(inputs[0].shape) < 0.1)  # mostly zeros, as bag-of-words
    x[3, 2], x[5, 0] = np.nan, -np.inf
    for features in (inputs[0], x):
        expected = run_relax_outputs(checked, [features, *inputs[1:]])
        got = run_relax_outputs(sparse, [features, *inputs[1:]])
        assert len(got) == len(expected)
        for a, b in zip(got, expected, strict=True):
            np.testing.assert_array_equal(a, b)
    assert np.flatnonzero(got[-1]).tolist() == [3, 5]


def test_float_models_are_left_alone(tiny):
    mod, _, _ = tiny("gcn", "fp32")
    checked = _checked(mod)
    sparse = SparseInputMatmul()(checked)
    assert sparse.same_as(checked)  # returned untouched
