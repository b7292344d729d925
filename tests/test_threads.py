"""dqc runs TVM kernels on every physical core unless the user chose a thread count (TVM alone
would use half the logical CPUs: one thread on a 2-vCPU machine)."""

import os
import subprocess
import sys

import pytest

from dqc._tvm import physical_cores

PROBE = "import dqc._tvm, tvm; print(tvm.get_global_func('runtime.NumThreads')())"


def _threads(**env) -> int:
    clean = {k: v for k, v in os.environ.items() if k not in ("TVM_NUM_THREADS", "OMP_NUM_THREADS")}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True
    )
    return int(done.stdout.strip())


def test_one_thread_per_physical_core_by_default():
    assert _threads() == physical_cores()


@pytest.mark.parametrize("variable", ["TVM_NUM_THREADS", "OMP_NUM_THREADS"])
def test_the_users_choice_wins(variable):
    assert _threads(**{variable: "1"}) == 1
