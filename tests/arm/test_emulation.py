"""aarch64 builds executed under qemu-user with TVM's aarch64 runtime: the same outputs as
the x86 build and the integer reference, bit for bit."""

import json

import numpy as np
import pytest
import tvm
from conftest import QMATMUL_CASES, qmatmul_module, qmatmul_operands

from dqc.cli import main
from dqc.emulation import EmulatedVM, EmulationError
from dqc.reference import IntegerReference
from dqc.runtime import load
from dqc.targets import PROFILES, cross_linker

pytestmark = pytest.mark.usefixtures("arm_toolchain")


@pytest.mark.parametrize("arch", ["gcn", "gin", "gat"])
def test_dotprod_build_equals_x86_build_and_reference(compiled_cora, trained_cora, cora, arch):
    x, edges = cora.x.numpy(), cora.edge_index.numpy()
    arm = load(compiled_cora(arch, target="arm64-dotprod"))
    assert arm.where == "qemu-aarch64 emulation"
    logits = arm.predict(x, edges)
    assert np.array_equal(logits, load(compiled_cora(arch)).predict(x, edges))
    assert np.array_equal(logits, IntegerReference(trained_cora(arch)).predict(x, edges))


def test_sparse_input_build_equals_reference(trained_cora, cora, tmp_path):
    """``--sparse-input on`` for aarch64: LLVM emulates the compress store (no AVX-512)."""
    from dqc.compiler import compile_checkpoint

    checkpoint = trained_cora("gcn")
    compile_checkpoint(checkpoint, tmp_path / "arm", "arm64-dotprod", sparse_input="on")
    arm = load(tmp_path / "arm")
    assert arm.manifest["sparse_input"] is True
    x, edges = cora.x.numpy(), cora.edge_index.numpy()
    assert np.array_equal(arm.predict(x, edges), IntegerReference(checkpoint).predict(x, edges))


def test_a_negative_node_id_stops_the_aarch64_binary_with_a_value_error(compiled_cora, cora):
    """The aarch64 graph preparation rejects the id; the runner's error is named."""
    edges = cora.edge_index.numpy().copy()
    edges[1, 7] = -3
    with pytest.raises(ValueError, match=r"negative node id \(-3\)"):
        load(compiled_cora("gcn", target="arm64-dotprod")).predict(cora.x.numpy(), edges)


def test_build_without_dotprod_equals_x86_build(compiled_cora, cora):
    x, edges = cora.x.numpy(), cora.edge_index.numpy()
    logits = load(compiled_cora("gcn", target="rpi4")).predict(x, edges)
    assert np.array_equal(logits, load(compiled_cora("gcn")).predict(x, edges))


def test_dqc_run_on_an_aarch64_build_says_it_emulates(compiled_cora, data_root, capsys):
    assert main(["run", str(compiled_cora("gcn")), "--data-root", str(data_root), "--json"]) == 0
    native = json.loads(capsys.readouterr().out)
    out = compiled_cora("gcn", target="arm64-dotprod")
    assert main(["run", str(out), "--data-root", str(data_root), "--json"]) == 0
    captured = capsys.readouterr()
    assert "qemu-aarch64 emulation" in captured.err
    emulated = json.loads(captured.out)
    assert emulated.keys() == native.keys()
    for key in ("accuracy", "fakequant_accuracy", "agreement", "bitexact_with_reference"):
        assert emulated[key] == native[key], key
    assert emulated["bitexact_with_reference"] is True


@pytest.mark.parametrize(("dtype", "k", "n", "density"), QMATMUL_CASES[:2])
def test_sdot_matmul_is_exact(tmp_path, dtype, k, n, density):
    """The sdot kernel alone (uint8 codes are shifted to int8), odd K and N included."""
    a, w = qmatmul_operands(dtype, k, n, density, seed=1)
    spec = PROFILES["arm64-dotprod"].target
    mod, kernels = qmatmul_module(w, dtype, spec, a_zero=7, b_zero=-2)
    assert "dqc_qmatmul_sdot" in kernels
    library = tmp_path / "qmatmul.so"
    tvm.compile(mod, tvm.target.Target(spec)).export_library(
        str(library), fcompile=tvm.support.cc.cross_compiler(cross_linker(spec))
    )
    (result,), _ = EmulatedVM(library).run("main", [a])
    np.testing.assert_array_equal(result, (a.astype(np.int64) - 7) @ (w.astype(np.int64) + 2))


def test_a_broken_library_is_a_clear_error(tmp_path):
    library = tmp_path / "model.so"
    library.write_bytes(b"not an ELF file")
    with pytest.raises(EmulationError, match=r"model\.so under qemu-aarch64 failed"):
        EmulatedVM(library).run("main", [np.zeros(3, np.float32)])
