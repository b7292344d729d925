"""``--sparse-input``: when the first matmul reads x sparsely, and that the sparse and dense
builds of one model give the integer reference's logits, bit for bit."""

import numpy as np
import pytest
import tvm

from dqc.checkpoint import load_checkpoint
from dqc.compiler import compile_checkpoint
from dqc.reference import IntegerReference
from dqc.runtime import load
from dqc.sparse_input import MAX_NONZERO_FRACTION, NONZERO_KEY, use_sparse_input
from dqc.targets import resolve_target


def _target(name: str) -> tvm.target.Target:
    return tvm.target.Target(resolve_target(name)[0])


def test_auto_needs_a_quantized_scheme_a_sparse_training_input_and_avx512():
    avx512, avx2, arm = (_target(t) for t in ("x86-avx512vnni", "x86-avx2", "arm64-dotprod"))
    sparse, dense = {NONZERO_KEY: 0.013}, {NONZERO_KEY: 2 * MAX_NONZERO_FRACTION}
    assert use_sparse_input("auto", "dq-int8", sparse, avx512)
    assert not use_sparse_input("auto", "dq-int8", dense, avx512)
    assert not use_sparse_input("auto", "dq-int8", {}, avx512)  # unknown: dense
    assert use_sparse_input("auto", "dq-int4", sparse, avx512)
    assert not use_sparse_input("auto", "fp32", sparse, avx512)
    assert not use_sparse_input("auto", "dq-int8", sparse, avx2)
    assert not use_sparse_input("auto", "dq-int8", sparse, arm)
    assert use_sparse_input("on", "dq-int4", dense, arm)
    assert not use_sparse_input("off", "dq-int8", sparse, avx512)
    with pytest.raises(ValueError, match="--sparse-input must be one of auto, on, off, got 'yes'"):
        use_sparse_input("yes", "dq-int8", sparse, avx512)


def test_training_records_the_input_nonzero_share(trained_cora, cora):
    recorded = load_checkpoint(trained_cora("gcn")).training[NONZERO_KEY]
    assert recorded == pytest.approx(float((cora.x != 0).float().mean()))
    assert 0.01 < recorded < 0.015  # Cora's bag of words


def test_sparse_and_dense_builds_match_the_reference(trained_cora, cora, tmp_path):
    checkpoint = trained_cora("gcn")
    models = {}
    for mode in ("on", "off"):
        compile_checkpoint(checkpoint, tmp_path / mode, sparse_input=mode)
        models[mode] = load(tmp_path / mode)
        assert models[mode].manifest["sparse_input"] is (mode == "on")
    reference = IntegerReference(checkpoint)
    edges = cora.edge_index.numpy()
    dense_x = np.random.default_rng(0).random(cora.x.shape, dtype=np.float32)
    for x in (cora.x.numpy(), dense_x):
        expected = reference.predict(x, edges)
        for model in models.values():
            assert np.array_equal(model.predict(x, edges), expected)
    x = cora.x.numpy().copy()
    x[7, 100] = np.inf
    with pytest.raises(ValueError, match=r"NaN or Inf \(row 7\)"):
        models["on"].predict(x, edges)
