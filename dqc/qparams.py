"""Affine quantization parameters, computed exactly as Degree-Quant's ``get_qparams`` does.

The arithmetic lives here, free of torch, so the trainer, the compiler and the NumPy integer
reference all derive the same (scale, zero_point) from a tracked range.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from dqc.fixed_point import TIE_BITS

TIE_STEPS = 2.0 ** (TIE_BITS - 1)


def round_to_code(v):
    """``v`` (float32, NumPy or torch) rounded as the integer program rounds: to nearest,
    with every value within ``2^-TIE_BITS`` of a half counted as that half and sent to the
    even integer. Rounding ``v * 2^(TIE_BITS - 1)`` first moves exactly those values onto the
    half; scaling by a power of two is exact, so NumPy, torch and TVM agree bit for bit."""
    return ((v * TIE_STEPS).round() / TIE_STEPS).round()


FP32_EPS = float(np.finfo(np.float32).eps)


def integer_bounds(bits: int, signed: bool) -> tuple[int, int]:
    """The integer grid ``[qmin, qmax]`` of a ``bits``-wide signed or unsigned integer."""
    qmin = -(2 ** (bits - 1)) if signed else 0
    return qmin, qmin + 2**bits - 1


@dataclass(frozen=True)
class QParams:
    """Per-tensor affine quantization: ``q = clamp(round(x / scale + zero_point), qmin, qmax)``.

    ``scale`` is the float32 value the fake quantizer divides by (stored as a Python float that
    float32 represents exactly); ``zero_point`` is an integer inside ``[qmin, qmax]``.
    """

    scale: float
    zero_point: int
    bits: int
    signed: bool

    @property
    def qmin(self) -> int:
        return integer_bounds(self.bits, self.signed)[0]

    @property
    def qmax(self) -> int:
        return integer_bounds(self.bits, self.signed)[1]

    @classmethod
    def from_range(cls, min_val: float, max_val: float, bits: int, signed: bool) -> QParams:
        """DQ's ``get_qparams`` in asymmetric mode, in float64 like the authors' Python floats.

        The range is widened to contain 0; ``scale = (max - min) / (qmax - qmin)`` floored at the
        float32 epsilon; ``zero_point = clamp(qmin - round(min / scale), qmin, qmax)`` with
        round-half-to-even; an empty range (``max == min``, i.e. both 0) gives scale 1, zero 0.
        """
        if not (math.isfinite(min_val) and math.isfinite(max_val)):
            raise ValueError(f"quantization range must be finite, got [{min_val}, {max_val}]")
        qmin, qmax = integer_bounds(bits, signed)
        lo, hi = min(0.0, float(min_val)), max(0.0, float(max_val))
        if hi == lo:
            return cls(1.0, 0, bits, signed)
        scale = max((hi - lo) / (qmax - qmin), FP32_EPS)
        zero_point = min(qmax, max(qmin, qmin - round(lo / scale)))
        return cls(float(np.float32(scale)), int(zero_point), bits, signed)

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """Float array to integers on the grid (float32 arithmetic, as the fake quantizer in
        eval mode)."""
        x = np.asarray(x, dtype=np.float32)
        q = round_to_code(x / np.float32(self.scale) + np.float32(self.zero_point))
        return np.clip(q, self.qmin, self.qmax).astype(np.int32)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        """Integers back to float32 values: ``(q - zero_point) * scale``."""
        return (np.asarray(q, np.float32) - np.float32(self.zero_point)) * np.float32(self.scale)

    def to_dict(self) -> dict:
        return asdict(self)
