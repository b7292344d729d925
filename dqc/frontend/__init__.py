"""From a trained checkpoint to a TVM Relax module: freeze, export, import."""
