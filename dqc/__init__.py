"""dqc: Degree-Quant training for GNNs and a compiler to real integer programs on TVM."""

__version__ = "0.1.0"


def load(directory, rpc=None, tracker=None, key=None):
    """Load a compiled model written by ``dqc compile`` (see ``dqc.runtime.load``): in this
    process, on a TVM RPC server (``rpc="host:port"``, or ``tracker`` and ``key``), or under
    emulation for an aarch64 build.

    Imported lazily so that ``import dqc`` (e.g. for training) does not load TVM."""
    from dqc.runtime import load as load_artifact

    return load_artifact(directory, rpc, tracker, key)
