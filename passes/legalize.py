"""Lowering of dqc's Relax operators to TE / TIR kernels (``DQC_LEGALIZE_MAP``).

Used as ``relax.transform.LegalizeOps(customize_legalize_map=DQC_LEGALIZE_MAP)``; each entry
maps an op to a ``call_tir`` of a kernel from ``dqc.kernels`` named ``dqc_*``.
"""

from __future__ import annotations

import math

import numpy as np
import tvm
from tvm import relax, topi
from tvm.target import codegen

from dqc import edge_softmax as softmax_spec
from dqc._tvm import constant_value, is_constant
from dqc.fixed_point import FixedPoint, UnitRatio
from dqc.kernels import (
    add_kernel,
    edge_softmax,
    index_add,
    qmatmul,
    qmatmul_amx,
    qmatmul_avx2,
    qmatmul_sdot,
    qmatmul_vnni,
    quantize,
    requantize,
    segment_pool,
)
from dqc.kernels.dot_product_matmul import WORD_ELEMENTS
from dqc.relax_ops import code_dtype

INJECTIVE = 2  # TVM's OpPatternKind kInjective
RECODE_ATTR = "dqc.recode"  # {dtype, width, shift} of a dot-product matmul's input recode


def _static_width(shape) -> int:
    return math.prod(int(shape[i]) for i in range(1, len(shape)))


def _quantize(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
    a = call.attrs
    dtype = code_dtype(int(a["qmin"]))
    return bb.call_te(
        quantize.quantize,
        call.args[0],
        float(a["scale"]),
        int(a["zero_point"]),
        int(a["qmin"]),
        int(a["qmax"]),
        dtype,
        primfunc_name_hint=f"dqc_quantize_f32to{dtype}",
    )


def _dequantize(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
    a = call.attrs
    return bb.call_te(
        quantize.dequantize,
        call.args[0],
        float(a["scale"]),
        int(a["zero_point"]),
        primfunc_name_hint="dqc_dequantize",
    )


def _take(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
    """TVM's gather, marked injective (each output element reads one table element, as Relay
    marked ``take``): TVM's pattern analysis calls an indirect read opaque, which kept the
    GCN edge norm ``dinv[src] * dinv[dst]`` as three kernels and two float arrays per edge
    instead of one fused kernel."""
    return bb.call_te(
        topi.take,
        call.args[0],
        call.args[1],
        call.attrs.axis,
        mode=call.attrs.mode,
        primfunc_attrs={"op_pattern": INJECTIVE},
    )


def _index_add(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
    base, index, src = call.args
    ty = base.ty
    width = _static_width(ty.shape)
    flat_base = bb.emit(relax.op.reshape(base, [ty.shape[0], width]))
    flat_src = bb.emit(relax.op.reshape(src, [src.ty.shape[0], width]))
    kernel = index_add.index_add(ty.dtype, index.ty.dtype, width)
    gv = add_kernel(bb, kernel, f"dqc_index_add_{ty.dtype}")
    out = bb.emit(
        relax.call_tir(
            gv, [flat_base, index, flat_src], relax.TensorType(flat_base.ty.shape, ty.dtype)
        )
    )
    return relax.op.reshape(out, ty.shape)


def _edge_softmax(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
    alpha, _dst, indptr = call.args
    a = call.attrs
    qmin, qmax = int(a["qmin"]), int(a["qmax"])
    table = softmax_spec.exp_table(
        float(a["scale"]), int(a["zero_point"]), qmin, qmax, float(a["negative_slope"])
    )
    heads = int(alpha.ty.shape[1])
    kernel = edge_softmax.integer(alpha.ty.dtype, heads, qmin, qmax - qmin + 1)
    gv = add_kernel(bb, kernel, "dqc_edge_softmax")
    return relax.call_tir(
        gv, [alpha, indptr, relax.const(table)], relax.TensorType(alpha.ty.shape, "int32")
    )


def _edge_softmax_float(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
    logits, _dst, indptr = call.args
    heads = int(logits.ty.shape[1])
    kernel = edge_softmax.floating(heads, float(call.attrs["negative_slope"]))
    gv = add_kernel(bb, kernel, "dqc_edge_softmax_float")
    return relax.call_tir(gv, [logits, indptr], relax.TensorType(logits.ty.shape, "float32"))


def _dot_product_kernel() -> str | None:
    """``"amx"``, ``"vnni"``, ``"sdot"`` or ``"avx2"`` when the current target has that dot
    product (AMX tiles of bytes, VNNI's 4 bytes, ARM's 4 bytes, AVX2's 2 int16)."""
    target = tvm.target.Target.current(allow_none=True)
    if target is None:
        return None
    if codegen.llvm_cpu_has_features(qmatmul_amx.AMX_FEATURES, target):
        return "amx"
    if codegen.llvm_cpu_has_features(["avx512vnni"], target):
        return "vnni"
    if target.features.has_dotprod:
        return "sdot"
    if codegen.llvm_cpu_has_features(["avx2"], target):
        return "avx2"
    return None


# (activation dtype, int32 lanes, block multiple, K multiple, kernel maker) of each
# dot-product kernel
DOT_PRODUCT_KERNELS = {
    "amx": ("uint8", qmatmul_amx.LANES, 1, qmatmul_amx.K_STEP, qmatmul_amx.qmatmul_amx),
    "vnni": ("uint8", qmatmul_vnni.LANES, 1, 4, qmatmul_vnni.qmatmul_vnni),
    "sdot": ("int8", qmatmul_sdot.LANES, qmatmul_sdot.GROUP, 4, qmatmul_sdot.qmatmul_sdot),
    "avx2": ("int16", qmatmul_avx2.LANES, qmatmul_avx2.GROUP, 2, qmatmul_avx2.qmatmul_avx2),
}


def _qmatmul(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
    a, b = call.args
    a_zero, b_zero = int(call.attrs["a_zero"]), int(call.attrs["b_zero"])
    kind = _dot_product_kernel()
    if is_constant(b) and _static_width(a.ty.shape) and kind is not None:
        return _qmatmul_dot_product(bb, kind, a, constant_value(b), a_zero, b_zero)
    if is_constant(b):
        b_sum = relax.const(constant_value(b).astype(np.int32).sum(axis=0), "int32")
    else:
        b_sum = bb.emit(relax.op.sum(relax.op.astype(b, "int32"), axis=[0]))
    return bb.call_te(
        qmatmul.qmatmul, a, b, b_sum, a_zero, b_zero, primfunc_name_hint="dqc_qmatmul"
    )


def _qmatmul_dot_product(
    bb, kind: str, a: relax.Expr, b: np.ndarray, a_zero: int, b_zero: int
) -> relax.Expr:
    """A constant-weight matmul on AMX or VNNI (uint8 x int8), sdot (int8 x int8) or AVX2
    (int16 x int16): activations are recoded to the instruction's operand type first, their
    zero point shifted with them (``qmatmul.recode_shift``), K zero-padded to the kernel's
    multiple."""
    k, n = b.shape
    dtype, lanes, multiple, k_multiple, make = DOT_PRODUCT_KERNELS[kind]
    per_word = WORD_ELEMENTS[dtype]
    padded_k = -(-k // k_multiple) * k_multiple
    groups = padded_k // per_word
    b_padded = np.pad(b, ((0, padded_k - k), (0, 0)))  # zero activations meet the extra rows
    packed, blocks = qmatmul.pack_weights(b_padded, lanes, multiple, per_word)
    width, shift = groups * per_word, qmatmul.recode_shift(str(a.ty.dtype), dtype)
    if (width, shift, dtype) == (k, 0, str(a.ty.dtype)):
        recoded = a  # already the kernel's operands (uint8 codes from an epilogue, say)
    else:
        recoded = _recode(bb, a, width, dtype, shift)
    a_zero += shift
    gv = add_kernel(bb, make(groups, blocks), f"dqc_qmatmul_{kind}")
    rows = a.ty.shape[0]
    dot = bb.emit(
        relax.call_tir(
            gv,
            [recoded, relax.const(packed, str(packed.dtype))],
            relax.TensorType([rows, blocks * lanes], "int32"),
        )
    )
    b_sum = relax.const(b.astype(np.int32).sum(axis=0), "int32")
    return bb.call_te(
        qmatmul.correct_zero_points,
        dot,
        b_sum,
        k,
        n,
        a_zero,
        b_zero,
        primfunc_name_hint="dqc_qmatmul_epilogue",
    )


def _recode(bb: relax.BlockBuilder, a: relax.Expr, width: int, dtype: str, shift: int):
    """``a``'s codes as a dot-product kernel reads them (``qmatmul.recode_padded``)."""
    return bb.emit_te(
        qmatmul.recode_padded,
        a,
        width,
        dtype,
        primfunc_name_hint=f"dqc_to_{dtype}",
        # FuseInputRecode folds a recode of the input's codes into the kernel quantizing it
        primfunc_attrs={RECODE_ATTR: {"dtype": dtype, "width": width, "shift": shift}},
    )


def _requantize(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
    a = call.attrs
    if "shift" not in a:
        raise ValueError("dqc.requantize has real multipliers: run FoldScales before lowering")
    count = len(a["zero_points"])
    terms, bias = list(call.args[:count]), (call.args[count] if len(call.args) > count else None)
    fixed = FixedPoint(tuple(_multiplier(m) for m in a["multipliers"]), int(a["shift"]))
    dtype = str(a["out_dtype"])
    zeros = [int(z) for z in a["zero_points"]]
    zero, qmin, qmax = int(a["zero_point"]), int(a["qmin"]), int(a["qmax"])
    unit = _requantize_unit_ratio(bb, terms, bias, fixed, zeros, zero, qmin, qmax, dtype)
    if unit is not None:
        return unit
    table = None
    if fixed.per_channel:  # one row of multipliers per term, one column per channel
        width = max(np.size(m) for m in fixed.multipliers)
        rows = [np.broadcast_to(np.asarray(m, np.int64), (width,)) for m in fixed.multipliers]
        # |m| < 2^30 (FixedPoint): int32, so that LLVM multiplies a sign-extended code by it
        # in one vpmuldq rather than a three-uop 64 x 64-bit vpmullq
        table = relax.const(np.stack(rows).astype(np.int32), "int32")

    def kernel(terms, *extra):
        b = extra[0] if bias is not None else None
        return requantize.requantize(
            terms,
            zeros,
            fixed,
            zero,
            qmin,
            qmax,
            dtype,
            b,
            extra[-1] if table is not None else None,
        )

    args = [terms] + [x for x in (bias, table) if x is not None]
    return bb.call_te(kernel, *args, primfunc_name_hint=f"dqc_requantize_to{dtype}")


def _multiplier(attr):
    """An integer multiplier attribute: an int, or per-channel ints as an int64 array."""
    if isinstance(attr, tvm.ir.Array):
        return np.array([int(v) for v in attr], np.int64)
    return int(attr)


def _requantize_unit_ratio(bb, terms, bias, fixed, zeros, zero, qmin, qmax, dtype):
    """The int32 form (``UnitRatio``) of a requantize with multipliers of exactly 1 (a bias
    added in the codes' own scale), when its terms are codes of at most 16 bits and its bias
    a constant; None otherwise."""
    if any(tvm.DataType(t.ty.dtype).bits > 16 for t in terms):
        return None
    if bias is not None and not is_constant(bias):
        return None
    form = UnitRatio.of(fixed, zeros, zero, None if bias is None else constant_value(bias))
    if form is None:
        return None
    channel = None
    if bias is not None:
        table = np.stack([form.base, form.tie, form.up]).astype(np.int32)
        channel = relax.const(table, "int32")

    def kernel(terms, *channel):
        return requantize.requantize_unit_ratio(
            terms, form, channel[0] if channel else None, qmin, qmax, dtype
        )

    args = [terms] + ([channel] if channel is not None else [])
    return bb.call_te(kernel, *args, primfunc_name_hint=f"dqc_requantize_unit_to{dtype}")


def _segment_pool(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
    x, graph_ptr = call.args
    width = _static_width(x.ty.shape)
    dtype = x.ty.dtype
    op = call.op.name
    if dtype not in ("int32", "float32"):
        raise TypeError(f"{op} takes int32 codes or float32, got {dtype}")
    integer, mean = dtype == "int32", op == "dqc.segment_mean"
    kernel = (segment_pool.integer if integer else segment_pool.floating)(width, mean)
    name = op.replace(".", "_") + ("" if integer else "_float")
    gv = add_kernel(bb, kernel, name)
    return relax.call_tir(gv, [x, graph_ptr], call.ty)


DQC_LEGALIZE_MAP = {
    "dqc.quantize": _quantize,
    "dqc.dequantize": _dequantize,
    "dqc.index_add": _index_add,
    "dqc.edge_softmax": _edge_softmax,
    "dqc.edge_softmax_float": _edge_softmax_float,
    "dqc.qmatmul": _qmatmul,
    "dqc.requantize": _requantize,
    "dqc.segment_mean": _segment_pool,
    "dqc.segment_sum": _segment_pool,
    "relax.take": _take,
}

__all__ = ["DQC_LEGALIZE_MAP"]
