"""Quantize floats to codes and dequantize codes to floats, elementwise, in float32.

``quantize``: ``cast(clamp(round(x / scale + zero_point), qmin, qmax))`` with a true division
and ``dqc.qparams.round_to_code``'s rounding (``tirx.round`` lowers to LLVM's ``nearbyint``,
half to even), matching the fake quantizer in eval mode bit for bit. ``dequantize``:
``(float(q) - zero_point) * scale``.

``quantize_checked`` quantizes a model's input ``x`` and, in the same pass over it, flags
every row that holds a NaN or an Inf (exponent bits all set), so the input needs no separate
finite check: on Cora that check is a second full read of the 15.5 MB feature matrix.
"""

from __future__ import annotations

from tvm import te, tirx
from tvm.script import tirx as T

from dqc.qparams import TIE_STEPS

NON_FINITE_EXPONENT = 0x7F800000  # float32 exponent bits: all set for NaN and +-Inf
CHECKED_ATTR = "dqc.quantize_checked"  # quantize_checked's arguments, on its PrimFunc


def code(value, scale: float, zero_point: int, qmin: int, qmax: int, dtype: str):
    """The code of one float32 value (the arithmetic of every quantize kernel)."""
    s = tirx.const(scale, "float32")
    z = tirx.const(float(zero_point), "float32")
    lo, hi = tirx.const(float(qmin), "float32"), tirx.const(float(qmax), "float32")
    steps, step = tirx.const(TIE_STEPS, "float32"), tirx.const(1 / TIE_STEPS, "float32")
    rounded = tirx.round(tirx.round((value / s + z) * steps) * step)
    return tirx.Cast(dtype, tirx.max(tirx.min(rounded, hi), lo))


def quantize(x: te.Tensor, scale: float, zero_point: int, qmin: int, qmax: int, dtype: str):
    return te.compute(
        x.shape, lambda *i: code(x(*i), scale, zero_point, qmin, qmax, dtype), name="quantize"
    )


def quantize_checked(
    features: int,
    scale: float,
    zero_point: int,
    qmin: int,
    qmax: int,
    dtype: str,
    recode: dict | None = None,
):
    """PrimFunc ``(x [n, features] float32) -> (codes [n, features], non_finite [n] int8)``:
    ``non_finite[i]`` is 1 when row ``i`` of ``x`` holds a NaN or Inf. Rows run in parallel;
    LLVM vectorizes the row loop, the flag being an OR reduction.

    ``recode`` (``{"dtype", "width", "shift"}``, the ``dqc.recode`` attribute of
    ``qmatmul.recode_padded``) writes the codes as a dot-product matmul reads them instead:
    shifted, in its operand type, zero-padded to ``width`` columns. The kernel records its
    arguments in an attribute, so a pass can rebuild it (``CHECKED_ATTR``)."""
    arguments = dict(
        features=features, scale=scale, zero_point=zero_point, qmin=qmin, qmax=qmax, dtype=dtype
    )
    if recode is not None:
        recode = {"dtype": str(recode["dtype"]), "width": int(recode["width"]),
                  "shift": int(recode["shift"])}  # fmt: skip
        arguments["recode"] = recode
    out_dtype, width = (dtype, features) if recode is None else (recode["dtype"], recode["width"])

    @T.prim_func(s_tir=True)  # a root block, as Relax's pattern analysis expects
    def dqc_quantize_checked(var_x: T.handle, var_codes: T.handle, var_non_finite: T.handle):
        T.func_attr({"tirx.noalias": True, "tirx.is_scheduled": True})
        n = T.int64()
        x = T.match_buffer(var_x, (n, features), "float32")
        codes = T.match_buffer(var_codes, (n, width), out_dtype)
        non_finite = T.match_buffer(var_non_finite, (n,), "int8")
        with T.sblock("root"):
            for i in T.parallel(n):
                non_finite[i] = T.int8(0)
                for j in range(features):
                    codes[i, j] = input_code(x[i, j], arguments, recode)
                    non_finite[i] = non_finite[i] | non_finite_flag(x[i, j])
                if width > features:
                    for j in range(features, width):
                        codes[i, j] = T.Cast(out_dtype, 0)

    return dqc_quantize_checked.with_attr(CHECKED_ATTR, arguments)


def input_code(value, arguments: dict, recode: dict | None = None):
    """The code ``quantize_checked`` (``arguments``: its ``CHECKED_ATTR``) writes for one
    input value, recoded for a matmul when ``recode`` is given."""
    names = ("scale", "zero_point", "qmin", "qmax", "dtype")
    scale, zero_point, qmin, qmax, dtype = (arguments[k] for k in names)
    value = code(value, float(scale), int(zero_point), int(qmin), int(qmax), str(dtype))
    if recode is None:
        return value
    shifted = tirx.Cast("int32", value) + tirx.const(int(recode["shift"]), "int32")
    return tirx.Cast(str(recode["dtype"]), shifted)


def non_finite_flag(value) -> tirx.PrimExpr:
    """int8 1 when the float32 ``value`` is NaN or +-Inf (exponent bits all set), else 0."""
    exponent = tirx.const(NON_FINITE_EXPONENT, "uint32")
    bits = tirx.bitwise_and(tirx.reinterpret("uint32", value), exponent)
    return tirx.Cast("int8", bits == exponent)


def dequantize(q: te.Tensor, scale: float, zero_point: int):
    s = tirx.const(scale, "float32")
    z = tirx.const(float(zero_point), "float32")
    return te.compute(q.shape, lambda *i: (tirx.Cast("float32", q(*i)) - z) * s, name="dequantize")
