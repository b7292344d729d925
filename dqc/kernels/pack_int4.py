"""Two 4-bit codes per byte: the storage of INT4 tensors that kernels unpack as they read.

Layout of one row of width ``W`` (``H = ceil(W / 2)`` bytes): byte ``b`` holds code ``b`` in
its low nibble and code ``b + H`` in its high nibble. Halves rather than neighbours, so a
kernel reading the row decodes a contiguous vector of bytes into two contiguous vectors of
codes (``b`` and ``b + H``), and both its loops vectorize. Signed codes (int8, -8..7) are
sign-extended by an arithmetic shift, unsigned ones (uint8, 0..15) masked.
"""

from __future__ import annotations

import numpy as np
from tvm import te, tirx


def packed_width(width: int) -> int:
    return -(-width // 2)


def fits_int4(dtype: str, qmin: int, qmax: int) -> bool:
    """Whether ``dtype`` codes in ``[qmin, qmax]`` fit a nibble of the same signedness (int16:
    the AVX2 matmul's widened int8 weights, a signed nibble)."""
    low, high = (0, 15) if dtype == "uint8" else (-8, 7)
    return dtype in ("int8", "uint8", "int16") and low <= qmin and qmax <= high


def pack(codes: te.Tensor) -> te.Tensor:
    """``[N, W]`` int8/uint8 codes -> ``[N, ceil(W / 2)]`` bytes of the same dtype."""
    n, width = codes.shape
    half = packed_width(int(width))
    dtype = codes.dtype

    def byte(i, b):
        low = tirx.Cast("int32", codes[i, b]) & 15
        high_index = tirx.min(b + half, width - 1)
        high = tirx.Select(b + half < width, tirx.Cast("int32", codes[i, high_index]) & 15, 0)
        return tirx.Cast(dtype, low | (high << 4))  # truncates to the byte

    return te.compute((n, half), byte, name="pack_int4")


def pack_array(codes: np.ndarray) -> np.ndarray:
    """NumPy twin of ``pack`` for constants (compile time): ``[N, W]`` -> ``[N, ceil(W/2)]``."""
    half = packed_width(codes.shape[1])
    padded = np.zeros((codes.shape[0], 2 * half), np.int32)
    padded[:, : codes.shape[1]] = codes
    nibbles = padded & 15
    return (nibbles[:, :half] | (nibbles[:, half:] << 4)).astype(np.uint8).view(codes.dtype)


def unpack(packed: te.Tensor, width: int, out_dtype: str | None = None) -> te.Tensor:
    """``[N, ceil(W/2)]`` packed bytes -> ``[N, W]`` codes (e.g. 4-bit weights, per call), as
    ``out_dtype`` (default: the bytes' dtype)."""
    n, half = packed.shape
    out_dtype = out_dtype or packed.dtype

    def code(i, j):
        low = unpack_value(packed[i, tirx.min(j, half - 1)], packed.dtype, high=False)
        high = unpack_value(packed[i, tirx.max(j - half, 0)], packed.dtype, high=True)
        return tirx.Cast(out_dtype, tirx.Select(j < half, low, high))

    return te.compute((n, width), code, name="unpack_int4")


def unpack_value(byte: tirx.PrimExpr, dtype: str, high: bool) -> tirx.PrimExpr:
    """The code in the low or high nibble of ``byte`` (int8: sign-extended; uint8: masked).

    Decoded in int32, where x86 and ARM have vector shifts (x86 has none for bytes): a
    sign-extended byte shifted right by 4 is its signed high nibble."""
    wide = tirx.Cast("int32", byte)
    if dtype == "int8":
        value = wide >> 4 if high else (wide << 28) >> 28
    else:
        value = wide >> 4 if high else wide & 15
    return tirx.Cast(dtype, value)
