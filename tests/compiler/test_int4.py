"""INT4 builds: codes stored two per byte (gathered messages and weights), bit-exact with the
integer reference on x86 and aarch64, in parity with the fake-quant model."""

import numpy as np
import pytest

from dqc.bench import precision_twin
from dqc.compiler import compile_checkpoint
from dqc.evaluation import evaluate_artifact
from dqc.reference import IntegerReference
from dqc.runtime import load, read_manifest

ARCHS = ["gcn", "gin", "gat"]


@pytest.mark.parametrize(
    ("arch", "scheme"), [(arch, "dq-int4") for arch in ARCHS] + [("gcn", "qat-int4")]
)
def test_cora_int4_parity(compiled_cora, data_root, arch, scheme):
    result = evaluate_artifact(compiled_cora(arch, scheme), "cora", data_root)
    assert result["scheme"] == scheme
    assert result["bitexact_with_reference"] is True
    assert result["agreement"] >= 99.5
    # At most 3 of the 1,000 test nodes (rounded: 77.9 - 77.6 is 0.30000000000001 in floats).
    assert round(abs(result["accuracy"] - result["fakequant_accuracy"]), 6) <= 0.3


@pytest.mark.usefixtures("arm_toolchain")
@pytest.mark.parametrize("arch", ARCHS)
def test_aarch64_int4_equals_x86_and_reference(compiled_cora, trained_cora, cora, arch):
    x, edges = cora.x.numpy(), cora.edge_index.numpy()
    logits = load(compiled_cora(arch, "dq-int4", target="arm64-dotprod")).predict(x, edges)
    assert np.array_equal(logits, load(compiled_cora(arch, "dq-int4")).predict(x, edges))
    reference = IntegerReference(trained_cora(arch, "dq-int4")).predict(x, edges)
    assert np.array_equal(logits, reference)


def test_int4_storage_is_packed(trained_cora, tmp_path):
    """Weights take half the bytes of the same model at INT8, whether the first layer reads x
    densely or sparsely, and the aggregation gathers packed codes."""
    int4 = trained_cora("gcn", "dq-int4")
    for mode in ("off", "on"):
        compile_checkpoint(
            int4, tmp_path / f"int4-{mode}", sparse_input=mode, dump_ir=tmp_path / mode
        )
        compile_checkpoint(precision_twin(int4, 8), tmp_path / f"int8-{mode}", sparse_input=mode)
        bytes4 = read_manifest(tmp_path / f"int4-{mode}")["constant_bytes"]
        bytes8 = read_manifest(tmp_path / f"int8-{mode}")["constant_bytes"]
        assert bytes4 < 0.55 * bytes8
        final = sorted((tmp_path / mode).glob("*.py"))[-1].read_text()
        assert "dqc_pack_int4" in final and "dqc_unpack_int4" in final
