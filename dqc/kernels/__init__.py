"""TE / TIR definitions of dqc's integer (and a few float) kernels.

Each function builds the computation only; schedules live in ``dqc.schedules``. Kernel names
follow ``dqc_<op>_<in>to<out>`` so they are easy to find in IR dumps and tuning logs.
"""

from tvm import relax, tirx


def add_kernel(builder: relax.BlockBuilder, kernel: tirx.PrimFunc, name: str) -> relax.GlobalVar:
    """Add a PrimFunc to the module under a fresh, unique name (dropping any fixed symbol)."""
    return builder.add_func(kernel.without_attr("global_symbol"), name)
