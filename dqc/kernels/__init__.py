"""TE / TIR definitions of dqc's integer (and a few float) kernels.

Each function builds the computation only; schedules live in ``dqc.schedules``. Kernel names
follow ``dqc_<op>_<in>to<out>`` so they are easy to find in IR dumps and tuning logs.
"""
