"""Compilation targets: TVM 0.27 target dicts from CLI strings, JSON or named profiles.

TVM 0.27 only accepts targets as dicts (``{"kind": "llvm", "mcpu": "cascadelake"}``) and
rejects the classic CLI strings; ``resolve_target`` accepts all three forms a user may have::

    "llvm -mcpu=cascadelake"                              classic string, translated
    '{"kind": "llvm", "mtriple": "aarch64-linux-gnu"}'    JSON dict
    "x86-avx512vnni"                                      a profile name (see PROFILES)

On x86 CPUs with AVX-512 the resolved target also turns off LLVM's ``prefer-256-bit`` tuning
(``"mattr": [..., "-prefer-256-bit"]``), unless the user's ``mattr`` names it.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field

import tvm
from tvm.target import codegen

from dqc.kernels.qmatmul_amx import AMX_FEATURES, amx_granted


@dataclass(frozen=True)
class Profile:
    name: str
    target: dict
    description: str
    features: tuple[str, ...] = field(default=())


PROFILES = {
    p.name: p
    for p in (
        Profile(
            "x86-avx2", {"kind": "llvm", "mcpu": "haswell"}, "x86-64 with AVX2", features=("avx2",)
        ),
        Profile(
            "x86-avx512vnni",
            {"kind": "llvm", "mcpu": "cascadelake"},
            "x86-64 with AVX-512 VNNI (Cascade Lake and newer, Zen 4)",
            features=("avx512", "vnni"),
        ),
        Profile(
            "x86-amx",
            {"kind": "llvm", "mcpu": "sapphirerapids"},
            "x86-64 with AMX int8 tiles (Sapphire Rapids and newer Xeons; Linux 5.16+)",
            features=("avx512", "vnni", "amx"),
        ),
        Profile(
            "arm64-neon",
            {"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mattr": ["+neon"]},
            "generic 64-bit ARM with NEON",
            ("neon",),
        ),
        Profile(
            "arm64-dotprod",
            {
                "kind": "llvm",
                "mtriple": "aarch64-linux-gnu",
                "mcpu": "cortex-a76",
                "mattr": ["+neon", "+dotprod"],
            },
            "ARMv8.2 with dot product (Cortex-A76 / A55)",
            ("neon", "dotprod"),
        ),
        Profile(
            "rpi4",
            {
                "kind": "llvm",
                "mtriple": "aarch64-linux-gnu",
                "mcpu": "cortex-a72",
                "mattr": ["+neon"],
            },
            "Raspberry Pi 4 (Cortex-A72, no dot product)",
            ("neon",),
        ),
    )
}

_LIST_OPTIONS = {"mattr", "keys", "libs"}
_INT_OPTIONS = {"num-cores", "opt-level", "vector-width"}


def full_width_vectors(spec: dict) -> dict:
    """``spec``, on an x86 CPU with AVX-512, with LLVM's ``prefer-256-bit`` tuning turned off.

    LLVM tunes Intel server and client cores (Skylake-SP to Granite Rapids) to split every
    vector wider than 256 bits, so the message kernels' 16-lane int32 vectors ran as two
    ymm halves. On zmm registers the INT8 aggregation of the Reddit-shaped graph takes
    35 + 19 ms instead of 46 + 24 ms (Xeon, 2 cores); FP32 builds time the same either way.
    A user's own ``+prefer-256-bit`` or ``-prefer-256-bit`` is left as it is."""
    mattr = list(spec.get("mattr", []))
    if spec.get("kind") != "llvm" or any(a.endswith("prefer-256-bit") for a in mattr):
        return spec
    if not codegen.llvm_cpu_has_features(["avx512f"], tvm.target.Target(spec)):
        return spec
    return {**spec, "mattr": [*mattr, "-prefer-256-bit"]}


def host_target() -> dict:
    """The machine dqc runs on: LLVM with its detected CPU, without AMX where the OS does not
    grant this process the tile state (Linux before 5.16), so host builds run here."""
    spec = {"kind": "llvm", "mcpu": str(codegen.llvm_get_system_cpu())}
    if codegen.llvm_cpu_has_features(AMX_FEATURES, tvm.target.Target(spec)) and not amx_granted():
        spec["mattr"] = [f"-{feature}" for feature in AMX_FEATURES]
    return spec


def parse_target_string(text: str) -> dict:
    """``"llvm -mcpu=x -mattr=+a,+b"`` -> ``{"kind": "llvm", "mcpu": "x", "mattr": [...]}``."""
    kind, *options = text.split()
    spec: dict = {"kind": kind}
    for option in options:
        if not option.startswith("-") or "=" not in option:
            raise ValueError(f"target option {option!r} in {text!r} is not -key=value")
        key, value = option.lstrip("-").split("=", 1)
        if key in _LIST_OPTIONS:
            spec[key] = [v for v in value.split(",") if v]
        elif key in _INT_OPTIONS:
            spec[key] = int(value)
        else:
            spec[key] = value
    return spec


def resolve_target(text: str | dict | None) -> tuple[dict, str | None]:
    """The target dict and the profile name (if one was used) for a user's target."""
    if text is None or text == "host":
        return full_width_vectors(host_target()), "host"
    if isinstance(text, dict):
        spec, name = dict(text), None
    elif text in PROFILES:
        return full_width_vectors(dict(PROFILES[text].target)), text
    elif text.lstrip().startswith("{"):
        try:
            spec, name = json.loads(text), None
        except json.JSONDecodeError as err:
            raise ValueError(f"target JSON {text!r} is invalid: {err}") from None
    else:
        spec, name = parse_target_string(text), None
    choices = ", ".join(PROFILES)
    try:
        tvm.target.Target(spec)
    except Exception as err:
        raise ValueError(f"invalid target {text!r}: {err}. Profiles: {choices}") from None
    triple = spec.get("mtriple") or str(codegen.llvm_get_system_triple())
    if "mcpu" in spec and not codegen.llvm_is_valid_cpu(spec["mcpu"], triple):
        raise ValueError(
            f"invalid target {text!r}: LLVM knows no CPU {spec['mcpu']!r} for "
            f"{triple}. Profiles: {choices}"
        )
    return full_width_vectors(spec), name


def target_arch(spec: dict) -> str:
    """The CPU architecture code for ``spec`` runs on (``"x86_64"``, ``"aarch64"``, ...)."""
    return (spec.get("mtriple") or str(codegen.llvm_get_system_triple())).split("-")[0]


def is_cross(spec: dict) -> bool:
    """Whether code for ``spec`` cannot run on this machine."""
    return target_arch(spec) != target_arch({})


def cross_linker(spec: dict) -> str | None:
    """The GNU C++ cross compiler that links a shared library for ``spec`` (``None``: the
    host's), e.g. ``aarch64-linux-gnu-g++`` from Debian's ``g++-aarch64-linux-gnu``."""
    if not is_cross(spec):
        return None
    name = f"{spec['mtriple']}-g++"
    if shutil.which(name) is None:
        package = f"g++-{spec['mtriple']}".replace("_", "-")
        raise ValueError(
            f"linking for {spec['mtriple']} needs the cross compiler {name}, which is not on "
            f"PATH (Debian/Ubuntu: apt-get install {package})"
        )
    return name
