"""dqc: Degree-Quant training for GNNs and a compiler to real integer programs on TVM."""

__version__ = "0.1.0"
