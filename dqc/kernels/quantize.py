"""Quantize floats to codes and dequantize codes to floats, elementwise, in float32.

``quantize``: ``cast(clamp(round(x / scale + zero_point), qmin, qmax))`` with round half to
even (``tirx.round`` lowers to LLVM's ``nearbyint``) and a true division, matching DQ's
fake quantizer bit for bit. ``dequantize``: ``(float(q) - zero_point) * scale``.
"""

from __future__ import annotations

from tvm import te, tirx


def quantize(x: te.Tensor, scale: float, zero_point: int, qmin: int, qmax: int, dtype: str):
    s = tirx.const(scale, "float32")
    z = tirx.const(float(zero_point), "float32")
    lo, hi = tirx.const(float(qmin), "float32"), tirx.const(float(qmax), "float32")

    def code(*i):
        return tirx.Cast(dtype, tirx.max(tirx.min(tirx.round(x(*i) / s + z), hi), lo))

    return te.compute(x.shape, code, name="quantize")


def dequantize(q: te.Tensor, scale: float, zero_point: int):
    s = tirx.const(scale, "float32")
    z = tirx.const(float(zero_point), "float32")
    return te.compute(q.shape, lambda *i: (tirx.Cast("float32", q(*i)) - z) * s, name="dequantize")
