"""Target strings, JSON dicts and profiles all resolve to TVM 0.27 target dicts."""

import pytest

from dqc.targets import PROFILES, cross_linker, is_cross, parse_target_string, resolve_target


def test_cli_string_is_translated():
    assert parse_target_string("llvm -mcpu=cascadelake") == {"kind": "llvm", "mcpu": "cascadelake"}
    spec = parse_target_string("llvm -mtriple=aarch64-linux-gnu -mattr=+neon,+dotprod")
    assert spec["mattr"] == ["+neon", "+dotprod"]
    assert parse_target_string("llvm -num-cores=4")["num-cores"] == 4


def test_json_profile_and_host():
    assert resolve_target('{"kind": "llvm", "mcpu": "znver4"}')[0]["mcpu"] == "znver4"
    spec, name = resolve_target("arm64-dotprod")
    assert name == "arm64-dotprod" and "+dotprod" in spec["mattr"]
    assert resolve_target(None)[0]["kind"] == "llvm"
    assert set(PROFILES) >= {"x86-avx2", "x86-avx512vnni", "arm64-neon", "arm64-dotprod", "rpi4"}


@pytest.mark.parametrize("bad", ["llvm mcpu", "{not json", "no-such-kind", "llvm -mcpu=nosuchcpu9"])
def test_bad_targets_name_the_problem(bad):
    with pytest.raises(ValueError, match="target"):
        resolve_target(bad)


def test_cross_targets_need_their_linker(monkeypatch):
    spec = PROFILES["arm64-dotprod"].target
    assert is_cross(spec) and not is_cross(resolve_target("host")[0])
    assert cross_linker(resolve_target("host")[0]) is None
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ValueError, match="apt-get install g\\+\\+-aarch64-linux-gnu"):
        cross_linker(spec)


def test_an_x86_host_runs_no_foreign_build(tmp_path):
    """An artifact for another CPU that dqc cannot emulate is refused by name."""
    import json

    from dqc.compiler import FORMAT, MANIFEST, VERSION
    from dqc.runtime import ArtifactError, load

    manifest = {"format": FORMAT, "version": VERSION, "library": "model.so",
                "target": {"kind": "llvm", "mtriple": "riscv64-linux-gnu"}}  # fmt: skip
    (tmp_path / MANIFEST).write_text(json.dumps(manifest))
    (tmp_path / "model.so").write_bytes(b"")
    with pytest.raises(ArtifactError, match="built for riscv64"):
        load(tmp_path)


def test_avx512_targets_keep_512_bit_vectors():
    """LLVM's prefer-256-bit tuning is turned off on AVX-512 CPUs, so the message kernels'
    16-lane int32 vectors sit in zmm registers; a user's own choice is kept."""
    import re

    import tvm
    from conftest import gather_sum_kernel

    spec, _ = resolve_target("llvm -mcpu=cascadelake")
    assert spec["mattr"] == ["-prefer-256-bit"]
    assert "mattr" not in resolve_target("x86-avx2")[0]
    assert resolve_target("arm64-neon")[0]["mattr"] == ["+neon"]
    kept = resolve_target("llvm -mcpu=cascadelake -mattr=+prefer-256-bit")[0]
    assert kept["mattr"] == ["+prefer-256-bit"]

    def asm(target: dict) -> str:
        executable = tvm.compile(gather_sum_kernel(128, "int8"), tvm.target.Target(target))
        return executable.mod.inspect_source("asm")

    widening = re.compile(r"vpmovsxbd\s+\S+,\s*%zmm")  # 16 int8 codes -> 16 int32 lanes
    assert widening.search(asm(spec))
    assert not widening.search(asm(kept))


def test_host_builds_leave_out_amx_the_os_does_not_grant(monkeypatch):
    """Without the OS's leave to use AMX tiles (Linux before 5.16), a host build takes the
    VNNI matmul instead of kernels that would stop with an error here."""
    import tvm
    from dqc.passes.legalize import _dot_product_kernel
    from tvm.target import codegen

    import dqc.targets
    from dqc.kernels.qmatmul_amx import AMX_FEATURES

    monkeypatch.setattr(codegen, "llvm_get_system_cpu", lambda: "sapphirerapids")
    monkeypatch.setattr(dqc.targets, "amx_granted", lambda: False)
    refused = dqc.targets.host_target()
    assert refused["mattr"] == [f"-{f}" for f in AMX_FEATURES]
    with tvm.target.Target(refused):
        assert _dot_product_kernel() == "vnni"
    monkeypatch.setattr(dqc.targets, "amx_granted", lambda: True)
    with tvm.target.Target(dqc.targets.host_target()):
        assert _dot_product_kernel() == "amx"
