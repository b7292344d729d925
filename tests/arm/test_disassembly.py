"""The right int8 instructions per ARM target: ``sdot`` with the dot-product extension, NEON
widening multiply-accumulates (``smull``/``smlal``) without it."""

import re
import subprocess

import numpy as np
import pytest
import tvm
from conftest import qmatmul_module

from dqc.targets import PROFILES

WIDENING_MAC = re.compile(r"\b(smull2?|smlal2?|umull2?|umlal2?|sadalp|uadalp)\b")


def _matmul_asm(profile: str) -> str:
    """Assembly of a Cora-sized int8 dense layer (dqc.qmatmul) built for ``profile``."""
    target = tvm.target.Target(PROFILES[profile].target)
    mod, _ = qmatmul_module(np.ones((1433, 64), np.int8), "int8", target, a_zero=3, b_zero=0)
    executable = tvm.compile(mod, target)
    return "".join(m.inspect_source("asm") for m in executable.mod.imports)


def test_dotprod_target_uses_sdot():
    assert re.search(r"\bsdot\b", _matmul_asm("arm64-dotprod"))


@pytest.mark.parametrize("profile", ["rpi4", "arm64-neon"])
def test_targets_without_dotprod_use_widening_multiply_accumulate(profile):
    asm = _matmul_asm(profile)
    assert not re.search(r"\b[su]dot\b", asm)
    assert WIDENING_MAC.search(asm)


@pytest.mark.usefixtures("arm_toolchain")
def test_compiled_model_library_contains_sdot(compiled_cora):
    library = compiled_cora("gcn", target="arm64-dotprod") / "model.so"
    listing = subprocess.run(
        ["aarch64-linux-gnu-objdump", "-d", str(library)], capture_output=True, text=True
    ).stdout
    assert "file format elf64-littleaarch64" in listing
    assert re.search(r"\tsdot\t", listing)
