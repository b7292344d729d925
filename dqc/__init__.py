"""dqc: Degree-Quant training for GNNs and a compiler to real integer programs on TVM."""

__version__ = "0.1.0"


def load(directory):
    """Load a compiled model written by ``dqc compile`` (see ``dqc.runtime.load``).

    Imported lazily so that ``import dqc`` (e.g. for training) does not load TVM."""
    from dqc.runtime import load as load_artifact

    return load_artifact(directory)
