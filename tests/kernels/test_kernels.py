"""dqc's kernels, built by LLVM for the host, against their NumPy specs: exact equality."""

import numpy as np
import pytest
import torch
from conftest import run_relax
from dqc.passes.fold_scales import FoldScales
from dqc.passes.legalize import DQC_LEGALIZE_MAP
from tvm import relax, tirx

from dqc import edge_softmax as softmax_spec
from dqc import relax_ops
from dqc.fake_quant import fake_quantize
from dqc.fixed_point import FixedPoint, requantize
from dqc.kernels.requantize import widened
from dqc.qparams import QParams

RNG = np.random.default_rng(0)


def _module(arg_types, build):
    """A ``main`` over symbolic-size args whose body is ``build(bb, *vars)``."""
    bb = relax.BlockBuilder()
    n = tirx.Var("n", "int64")
    params = [
        relax.Var(f"a{i}", relax.TensorType([n if d == "n" else d for d in shape], dtype))
        for i, (shape, dtype) in enumerate(arg_types)
    ]
    with bb.function("main", params):
        with bb.dataflow():
            out = bb.emit_output(bb.emit(build(*params)))
        bb.emit_func_output(out)
    return bb.get()


@pytest.mark.parametrize("signed", [True, False])
def test_quantize_matches_the_deployed_fake_quantizer_bit_for_bit(signed):
    qp = QParams.from_range(-0.37, 1.9, 8, signed)
    grid = (np.arange(-300, 300) + 0.5) * qp.scale  # exact ties and everything between
    x = np.concatenate([grid, RNG.standard_normal(5000) * 2]).astype(np.float32)[:, None]
    mod = _module(
        [(("n", 1), "float32")],
        lambda a: relax_ops.call(
            "dqc.quantize",
            [a],
            scale=qp.scale,
            zero_point=qp.zero_point,
            qmin=qp.qmin,
            qmax=qp.qmax,
        ),
    )
    codes = run_relax(mod, [x])
    assert codes.dtype == (np.int8 if signed else np.uint8)
    np.testing.assert_array_equal(codes.astype(np.int32), qp.quantize(x))
    expected = fake_quantize(torch.from_numpy(x), qp, deployed=True).numpy()
    np.testing.assert_array_equal(qp.dequantize(codes), expected)


def test_requantize_matches_spec_with_terms_bias_and_ties():
    a = RNG.integers(-600, 600, (64, 8)).astype(np.int32)
    b = RNG.integers(-60, 60, (64, 8)).astype(np.int8)
    # Sixteenths, fourteenths and halves: many sums land on a tie, which with the odd zero
    # point below goes to the even code.
    reals, bias = [0.0625, 15 / 14], RNG.integers(-8, 8, 8) * 0.5
    mod = _module(
        [(("n", 8), "int32"), (("n", 8), "int8")],
        lambda x, y: relax_ops.call(
            "dqc.requantize",
            [x, y, relax.const(bias, "float64")],
            zero_points=[0, 3],
            real_multipliers=reals,
            zero_point=-3,
            qmin=-128,
            qmax=127,
            out_dtype="int8",
        ),
    )
    out = run_relax(FoldScales()(mod), [a, b])
    fixed = FixedPoint.from_reals(reals, float(np.abs(bias).max()))
    expected = requantize([a, b], [0, 3], fixed, -3, -128, 127, fixed.bias(bias))
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize(("terms", "zero_point"), [(1, -1), (1, 4), (2, 3)])
def test_unit_ratio_requantize_matches_spec(terms, zero_point):
    """Multipliers of exactly 1 (a bias added in the codes' scale) take the int32 form; every
    int8 code against biases that are exact ties (halves), within the tie window of one,
    just outside it, and random."""
    codes = np.arange(-128, 128, dtype=np.int8)
    inputs = [np.stack([np.roll(codes, 17 * k)] * 6, axis=1) for k in range(terms)]
    window = 2.0**-10
    bias = np.array([2.5, -3.5, 0.5 + window / 2, 0.5 + 2 * window, -7.3, 0.0])
    zeros = [-1, 2][:terms]
    mod = _module(
        [(("n", 6), "int8")] * terms,
        lambda *x: relax_ops.call(
            "dqc.requantize",
            [*x, relax.const(bias, "float64")],
            zero_points=zeros,
            real_multipliers=[1.0] * terms,
            zero_point=zero_point,
            qmin=-128,
            qmax=127,
            out_dtype="int8",
        ),
    )
    folded = FoldScales()(mod)
    legalized = relax.transform.LegalizeOps(customize_legalize_map=DQC_LEGALIZE_MAP)(folded)
    names = [gv.name_hint for gv in legalized.get_global_vars()]
    assert "dqc_requantize_unit_toint8" in names
    fixed = FixedPoint.from_reals([1.0] * terms, float(np.abs(bias).max()))
    expected = requantize(inputs, zeros, fixed, zero_point, -128, 127, fixed.bias(bias))
    np.testing.assert_array_equal(run_relax(folded, inputs), expected)


def test_widened_skips_only_lossless_round_trips():
    """A clamped code narrowed to int8 and widened again is the clamped value itself (no pack
    and unpack in the epilogues); a narrowing that may wrap keeps both casts."""
    x = tirx.Var("x", "int64")

    def clamp(high):
        return tirx.max(tirx.min(x, tirx.const(high, "int64")), tirx.const(-128, "int64"))

    code = clamp(127)
    assert widened(tirx.Cast("int8", code), "int64").same_as(code)
    assert str(widened(tirx.Cast("int8", code), "int32").ty) == "int32"
    for may_wrap in (x, clamp(128)):
        kept = widened(tirx.Cast("int8", may_wrap), "int64")
        assert isinstance(kept, tirx.Cast) and isinstance(kept.value, tirx.Cast)


@pytest.mark.parametrize("dtype", ["int8", "uint8"])
def test_qmatmul_with_zero_points(dtype):
    low, high = (-128, 128) if dtype == "int8" else (0, 256)
    a = RNG.integers(low, high, (37, 70)).astype(dtype)
    w = RNG.integers(-128, 128, (70, 41)).astype(np.int8)
    mod = _module(
        [(("n", 70), dtype)],
        lambda x: relax_ops.call("dqc.qmatmul", [x, relax.const(w)], a_zero=5, b_zero=-3),
    )
    expected = (a.astype(np.int64) - 5) @ (w.astype(np.int64) + 3)
    np.testing.assert_array_equal(run_relax(mod, [a]), expected)


def test_edge_softmax_matches_spec_and_float_softmax():
    counts = RNG.integers(0, 9, 50)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    edges = int(indptr[-1])
    dst = np.repeat(np.arange(50), counts).astype(np.int64)
    alpha = RNG.integers(-128, 128, (edges, 3)).astype(np.int8)
    attrs = {"scale": 0.05, "zero_point": 4, "qmin": -128, "qmax": 127, "negative_slope": 0.2}
    bb_types = [((edges, 3), "int8"), ((edges,), "int64"), ((51,), "int64")]
    mod = _module(bb_types, lambda a, d, p: relax_ops.call("dqc.edge_softmax", [a, d, p], **attrs))
    weights = run_relax(mod, [alpha, dst, indptr])
    spec = softmax_spec.edge_softmax(alpha, indptr, **attrs)
    np.testing.assert_array_equal(weights, spec)
    logits = 0.05 * (alpha.astype(np.float64) - 4)
    logits = np.where(logits >= 0, logits, 0.2 * logits)
    for row in range(50):
        part = slice(indptr[row], indptr[row + 1])
        if counts[row]:
            soft = np.exp(logits[part] - logits[part].max(0))
            soft /= soft.sum(0)
            assert np.abs(weights[part] * softmax_spec.WEIGHT_SCALE - soft).max() < 2e-4


def test_index_add_matches_numpy():
    base = RNG.standard_normal((20, 2, 3)).astype(np.float32)
    index = RNG.integers(0, 20, 100)
    src = RNG.standard_normal((100, 2, 3)).astype(np.float32)
    types = [((20, 2, 3), "float32"), ((100,), "int64"), ((100, 2, 3), "float32")]
    mod = _module(types, lambda b, i, s: relax_ops.call("dqc.index_add", [b, i, s]))
    expected = base.copy()
    np.add.at(expected, index, src)
    np.testing.assert_allclose(run_relax(mod, [base, index, src]), expected, rtol=1e-6)
