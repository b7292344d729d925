"""Run aarch64 builds on an x86 host: qemu-user over TVM's own aarch64 runtime.

A cross-compiled binary nobody ran is a guess, so dqc executes aarch64 builds here. The
aarch64 runtime libraries come from the manylinux aarch64 wheels of the pinned apache-tvm and
apache-tvm-ffi (downloaded once with pip, or taken from ``$DQC_AARCH64_WHEELS``, a folder
holding both wheels, when offline), and ``dqc/native/vm_runner.cc`` is cross-compiled against
them: a small C++ host that loads a model library in the Relax VM and calls one function on
arguments passed as raw files. Everything is prepared once under
``$DQC_CACHE_DIR/aarch64-runtime/``. Needs Debian's ``g++-aarch64-linux-gnu`` and
``qemu-user``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from importlib import resources
from pathlib import Path

import numpy as np
import tvm
import tvm_ffi

from dqc.datasets import cache_dir

TRIPLE = "aarch64-linux-gnu"
SYSROOT = Path("/usr") / TRIPLE  # libc of Debian's cross toolchain, for qemu's -L
QEMU = "qemu-aarch64"
RUNNER = "dqc_vm_runner"
WHEELS = {  # wheel -> the runtime library taken from it
    f"apache-tvm=={tvm.__version__}": "tvm/lib/libtvm_runtime.so",
    f"apache-tvm-ffi=={tvm_ffi.__version__}": "tvm_ffi/lib/libtvm_ffi.so",
}


class EmulationError(RuntimeError):
    """The aarch64 toolchain, runtime or emulator is missing, or the emulated run failed."""


def _require(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise EmulationError(
            f"running aarch64 builds here needs {tool} (Debian/Ubuntu: apt-get install {package})"
        )
    return path


def _fetch_wheels(folder: Path) -> list[Path]:
    offline = os.environ.get("DQC_AARCH64_WHEELS")
    if offline:
        return sorted(Path(offline).glob("*aarch64*.whl"))
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    options = "--quiet --no-deps --only-binary=:all: --platform manylinux_2_28_aarch64"
    command = [sys.executable, "-m", "pip", "download", *options.split()]
    command += ["--python-version", version, "--dest", str(folder), *WHEELS]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise EmulationError(
            f"could not download the aarch64 TVM runtime ({' '.join(WHEELS)}); offline, put "
            f"both wheels in a folder named by $DQC_AARCH64_WHEELS.\n{done.stderr.strip()}"
        )
    return sorted(folder.glob("*.whl"))


def _prepare(folder: Path) -> None:
    """Extract the aarch64 runtime libraries into ``folder`` and build the runner there."""
    compiler = _require(f"{TRIPLE}-g++", "g++-aarch64-linux-gnu")
    wanted = set(WHEELS.values())
    for wheel in _fetch_wheels(folder):
        with zipfile.ZipFile(wheel) as archive:
            for member in wanted & set(archive.namelist()):
                (folder / Path(member).name).write_bytes(archive.read(member))
    missing = [m for m in wanted if not (folder / Path(m).name).exists()]
    if missing:
        raise EmulationError(f"the aarch64 wheels lack {', '.join(missing)}")
    source = resources.files("dqc").joinpath("native", "vm_runner.cc")
    include = Path(tvm_ffi.__file__).parent / "include"  # headers are the same on every CPU
    flags = "-std=c++17 -O2 -ltvm_runtime -ltvm_ffi -Wl,-rpath,$ORIGIN".split()
    command = [compiler, str(source), f"-I{include}", f"-L{folder}", *flags]
    command += ["-o", str(folder / RUNNER)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise EmulationError(f"building {RUNNER} failed:\n{done.stderr.strip()}")


def aarch64_runtime() -> Path:
    """The folder with the aarch64 TVM runtime and ``dqc_vm_runner`` (prepared on first use)."""
    folder = cache_dir() / "aarch64-runtime" / f"tvm-{tvm.__version__}-ffi-{tvm_ffi.__version__}"
    if not (folder / RUNNER).exists():
        folder.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(dir=folder.parent))
        try:
            _prepare(scratch)
            scratch.rename(folder)  # atomic: a half-prepared folder is never used
        except OSError:
            if not (folder / RUNNER).exists():
                raise
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return folder


class EmulatedVM:
    """The Relax VM over an aarch64 model library, run under qemu-user one call at a time."""

    where = "qemu-aarch64 emulation"

    def __init__(self, library: str | os.PathLike):
        self.library = Path(library).resolve()
        self.qemu = _require(QEMU, "qemu-user")
        self.runtime = aarch64_runtime()

    def run(self, function: str, arrays, repeats: int = 0) -> tuple[list[np.ndarray], float]:
        """Outputs of ``function(*arrays)`` and, with ``repeats``, the median ms of a call."""
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            lines = []
            for i, array in enumerate(arrays):
                array = np.ascontiguousarray(array)
                array.tofile(folder / f"arg{i}.bin")
                dims = " ".join(map(str, array.shape))
                lines.append(f"arg{i}.bin {array.dtype} {array.ndim} {dims}")
            (folder / "args.txt").write_text("\n".join(lines) + "\n")
            runner = [self.qemu, "-L", str(SYSROOT), str(self.runtime / RUNNER)]
            command = [*runner, str(self.library), function, str(folder), str(repeats)]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode:
                raise EmulationError(
                    f"{self.library} under {QEMU} failed (exit {done.returncode}): "
                    f"{done.stderr.strip()}"
                )
            outputs = []
            for line in (folder / "outputs.txt").read_text().splitlines():
                name, dtype, ndim, *dims = line.split()
                shape = tuple(int(d) for d in dims[: int(ndim)])
                outputs.append(np.fromfile(folder / name, np.dtype(dtype)).reshape(shape))
        timing = [ln.split()[1] for ln in done.stdout.splitlines() if ln.startswith("median_ms")]
        return outputs, float(timing[0]) if timing else float("nan")
