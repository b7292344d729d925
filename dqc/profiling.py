"""Per-kernel wall times of one compiled-model call, through the Relax VM's instrument hook."""

from __future__ import annotations

import time
from collections import defaultdict

from tvm import relax


def kernel_times(vm: relax.VirtualMachine, function: str, *args) -> dict[str, float]:
    """Seconds spent in each called function (kernels and builtins) during one call."""
    totals: dict[str, float] = defaultdict(float)
    started: dict[str, float] = {}

    def instrument(func, symbol, before_run, ret_value, *call_args):
        if before_run:
            started[symbol] = time.perf_counter()
        else:
            totals[symbol] += time.perf_counter() - started.pop(symbol, time.perf_counter())
        return 0

    vm.set_instrument(instrument)
    try:
        vm[function](*args)
    finally:
        vm.set_instrument(lambda *a: 0)
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]))
