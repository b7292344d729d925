"""GCN's message aggregation by table lookup (``dqc.kernels.spmm_lookup``): the same sums as
``dqc.fixed_point.requantize_product`` and as the arithmetic kernel, on every row shape
(empty, one edge, runs of 255 edges and more, a hub of 2,000) and row width (a partial
64-byte vector, whole ones, both), for byte codes and for 4-bit codes packed two per byte."""

import numpy as np
import pytest
import tvm
from dqc.schedules.spmm_csr import schedule_rows
from tvm import s_tir
from tvm.target import codegen

from dqc._tvm import tensor
from dqc.fixed_point import FixedPoint, requantize, requantize_product
from dqc.kernels.pack_int4 import pack_array
from dqc.kernels.spmm_csr import Leaf, Node, spmm_csr
from dqc.kernels.spmm_lookup import (
    PERMUTE_ONE,
    RUN,
    SHUFFLE,
    SHUFFLE_AVX2,
    TABLE_LOOKUP,
    Lookup,
    code_values,
    lookup_supported,
    message_table,
    nibble_shuffle,
    product_table,
)
from dqc.targets import host_target, resolve_target

VBMI = tvm.target.Target({"kind": "llvm", "mcpu": "icelake-server"})
CASCADE_LAKE = tvm.target.Target({"kind": "llvm", "mcpu": "cascadelake"})  # AVX-512 BW, no VBMI
HASWELL = tvm.target.Target({"kind": "llvm", "mcpu": "haswell"})  # AVX2
ARM = tvm.target.Target(resolve_target("arm64-dotprod")[0])
HOST = tvm.target.Target(host_target())
runs_lookup = pytest.mark.skipif(
    not lookup_supported(HOST),
    reason="this CPU lacks AVX-512 VBMI (vpermi2b): the lookup kernel can be built, not run",
)


def _code(leaf: int, dtype: str, shape: tuple[int, ...], zero: int) -> Node:
    cast = Node("cast", "int32", shape, (Node("leaf", dtype, shape, leaf=leaf),))
    return Node("subtract", "int32", shape, (cast, Node("const", "int32", (), value=zero)))


def _attrs(real: float, zero_point: int, centered: bool, qmin=-128, qmax=127) -> dict:
    fixed = FixedPoint.from_reals([real])
    return dict(
        multipliers=fixed.multipliers,
        shift=fixed.shift,
        zero_point=zero_point,
        qmin=qmin,
        qmax=qmax,
        centered=centered,
    )


def _kernels(
    width: int,
    b_dtype: str,
    attrs: dict,
    a_zero: int,
    b_zero: int,
    epilogue=None,
    nibbles: str | None = None,
):
    """The lookup and arithmetic kernels of one GCN message (and ``epilogue``), and the
    lookup's table; ``nibbles``: the sources' 4-bit codes are two per byte, looked up by
    that instruction."""
    shape = (width,)
    packed = nibbles is not None
    message = Node(
        "requantize_product",
        "int32",
        shape,
        (_code(1, "int8", (1,), a_zero), _code(0, b_dtype, shape, b_zero)),
        attrs=attrs,
    )
    leaves = [Leaf("gather", b_dtype, shape, packed=packed), Leaf("edge", "int8", (1,))]
    table, correction = product_table(attrs, ("int8", a_zero), (b_dtype, b_zero), packed)
    built = []
    for lookup in (Lookup(1, 0, correction, nibbles), None):
        func = spmm_csr(message, leaves, "int32", "int64", epilogue, lookup=lookup)
        sch = s_tir.Schedule(func)
        schedule_rows(sch)
        built.append(sch.mod)
    return built, table


def _graph(rng, n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Sources and sorted targets: random rows, empty ones, rows of exactly ``RUN`` and
    ``RUN + 1`` edges (the int16 runs' edge), and a hub of 2,000 in-edges."""
    counts = rng.integers(0, 40, n)
    counts[rng.choice(n, 40, replace=False)] = 0
    counts[:4] = [RUN, RUN + 1, 2_000, 1]
    dst = np.repeat(np.arange(n), counts)
    return rng.integers(0, n, dst.size), dst


@runs_lookup
@pytest.mark.parametrize("width", [41, 64, 128, 146, 300])
@pytest.mark.parametrize(("b_dtype", "b_zero"), [("int8", 0), ("uint8", 100)])
@pytest.mark.parametrize("centered", [True, False])
def test_lookup_sums_equal_the_reference_and_the_arithmetic(width, b_dtype, b_zero, centered):
    rng = np.random.default_rng(width)
    # A large multiplier sends most messages to the clamp: entries of -128 and 127 in every
    # row, the int16 runs' worst case.
    attrs = _attrs(0.05, zero_point=3, centered=centered)
    a_zero = -128
    (lookup, arithmetic), table = _kernels(width, b_dtype, attrs, a_zero, b_zero)
    src, dst = _graph(rng)
    n, e = 400, src.size
    indptr = np.searchsorted(dst, np.arange(n + 1)).astype(np.int64)
    info = np.iinfo(b_dtype)
    b = rng.integers(info.min, info.max + 1, (n, width)).astype(b_dtype)
    a = rng.integers(-128, 128, (e, 1)).astype(np.int8)
    # The hub hears only node 5, the row of RUN + 1 edges only node 6, through the largest
    # edge code: their messages all sit at the top / bottom of the range.
    for row, source, fill in ((2, 5, info.max), (1, 6, info.min)):
        src[dst == row], b[source], a[dst == row] = source, fill, 127

    fixed = FixedPoint(attrs["multipliers"], attrs["shift"])
    centred_b = b[src].astype(np.int64) - b_zero
    messages = requantize_product(a.astype(np.int64) - a_zero, centred_b, fixed, 3, -128, 127)
    assert (messages == -128).mean() > 0.2 and (messages == 127).mean() > 0.2
    expected = np.zeros((n, width), np.int64)
    np.add.at(expected, dst, messages - 3 if centered else messages)

    args = [tensor(indptr), tensor(src.astype(np.int64)), tensor(b), tensor(a)]
    outs = []
    for mod, extra in ((lookup, [tensor(table)]), (arithmetic, [])):
        out = tvm.runtime.empty((n, width), "int32")
        tvm.compile(mod, VBMI)(*args, *extra, out)
        outs.append(out.numpy())
    np.testing.assert_array_equal(outs[0], expected)
    np.testing.assert_array_equal(outs[1], expected)


@runs_lookup
@pytest.mark.parametrize("width", [41, 128])
@pytest.mark.parametrize(("dtype", "nibbles", "qmin", "qmax"), [
    ("int8", None, -128, 127), ("int8", PERMUTE_ONE, -8, 7), ("uint8", PERMUTE_ONE, 0, 15)
])  # fmt: skip
def test_source_code_messages_equal_the_reference(width, dtype, nibbles, qmin, qmax):
    """GIN: each message is the source's code requantized to the message's scale, minus its
    zero point, read from a table of one row (bytes, or nibbles of packed codes)."""
    rng = np.random.default_rng(width)
    fixed, zero, code_zero = FixedPoint.from_reals([1.7]), qmin + 2, qmin + 1
    attrs = dict(
        zero_points=[code_zero], multipliers=fixed.multipliers, shift=fixed.shift,
        zero_point=zero, qmin=qmin, qmax=qmax,
    )  # fmt: skip
    shape = (width,)
    requant = Node("requantize", "int8", shape, (Node("leaf", dtype, shape, leaf=0),), attrs=attrs)
    cast = Node("cast", "int32", shape, (requant,))
    message = Node("subtract", "int32", shape, (cast, Node("const", "int32", (), value=zero)))
    packed = nibbles is not None
    leaves = [Leaf("gather", dtype, shape, packed=packed)]
    values = code_values(dtype, packed)
    messages = requantize([values], [code_zero], fixed, zero, qmin, qmax) - zero
    low = int(messages.min())
    table = message_table(messages[None, :].astype(np.int64), low, packed)
    src, dst = _graph(rng)
    n = 400
    indptr = np.searchsorted(dst, np.arange(n + 1)).astype(np.int64)
    codes = rng.integers(values.min(), values.max() + 1, (n, width)).astype(dtype)
    expected = np.zeros((n, width), np.int64)
    np.add.at(expected, dst, requantize([codes[src]], [code_zero], fixed, zero, qmin, qmax) - zero)

    stored = pack_array(codes) if packed else codes
    args = [tensor(indptr), tensor(src.astype(np.int64)), tensor(stored)]
    for lookup in (Lookup(None, 0, low, nibbles), None):
        func = spmm_csr(message, leaves, "int32", "int64", lookup=lookup)
        sch = s_tir.Schedule(func)
        schedule_rows(sch)
        extra = [tensor(table)] if lookup is not None else []
        out = tvm.runtime.empty((n, width), "int32")
        tvm.compile(sch.mod, VBMI)(*args, *extra, out)
        np.testing.assert_array_equal(out.numpy(), expected)


@pytest.mark.parametrize(
    ("nibbles", "target"),
    [(PERMUTE_ONE, VBMI), (SHUFFLE, CASCADE_LAKE), (SHUFFLE_AVX2, HASWELL)],
)
@pytest.mark.parametrize("width", [41, 64, 127, 128, 146, 200, 301])
@pytest.mark.parametrize(("b_dtype", "b_zero"), [("int8", -1), ("uint8", 5)])
def test_packed_lookup_sums_equal_the_reference_and_the_arithmetic(
    nibbles, target, width, b_dtype, b_zero
):
    """INT4: 4-bit codes gathered two per byte, 4-bit messages (most at their clamps)."""
    feature = {PERMUTE_ONE: "avx512vbmi", SHUFFLE: "avx512bw", SHUFFLE_AVX2: "avx2"}[nibbles]
    if not codegen.llvm_cpu_has_features([feature], HOST):
        pytest.skip(f"this CPU lacks {feature}: the nibble lookup can be built, not run")
    rng = np.random.default_rng(width)
    attrs = _attrs(0.4, zero_point=-1, centered=True, qmin=-8, qmax=7)
    a_zero = -8
    (lookup, arithmetic), table = _kernels(width, b_dtype, attrs, a_zero, b_zero, None, nibbles)
    src, dst = _graph(rng)
    n, e = 400, src.size
    indptr = np.searchsorted(dst, np.arange(n + 1)).astype(np.int64)
    low, high = (-8, 7) if b_dtype == "int8" else (0, 15)
    b = rng.integers(low, high + 1, (n, width)).astype(b_dtype)
    a = rng.integers(-8, 8, (e, 1)).astype(np.int8)
    for row, source, fill in ((2, 5, high), (1, 6, low)):
        src[dst == row], b[source], a[dst == row] = source, fill, 7

    fixed = FixedPoint(attrs["multipliers"], attrs["shift"])
    centred_b = b[src].astype(np.int64) - b_zero
    messages = requantize_product(a.astype(np.int64) - a_zero, centred_b, fixed, -1, -8, 7)
    assert (messages == -8).mean() > 0.1 and (messages == 7).mean() > 0.1
    expected = np.zeros((n, width), np.int64)
    np.add.at(expected, dst, messages + 1)

    args = [tensor(indptr), tensor(src.astype(np.int64)), tensor(pack_array(b)), tensor(a)]
    for mod, extra in ((lookup, [tensor(table)]), (arithmetic, [])):
        out = tvm.runtime.empty((n, width), "int32")
        tvm.compile(mod, target)(*args, *extra, out)
        np.testing.assert_array_equal(out.numpy(), expected)


def test_lookup_kernel_permutes_bytes_instead_of_multiplying():
    # int8 outputs: the sums, even and odd features apart, are put back in feature order
    # first, so whole vectors of bytes are stored rather than one byte at a time
    to_int8 = Node("cast", "int8", (128,), (Node("aggregate", "int32", (128,)),))
    (lookup, arithmetic), _ = _kernels(128, "int8", _attrs(0.01, 0, True), -128, 0, to_int8)

    def asm(mod) -> str:
        executable = tvm.compile(mod, VBMI)
        modules = [executable.mod, *executable.mod.imports]
        return "".join(m.inspect_source("asm") for m in modules)

    text = asm(lookup)
    assert "vpermt2b" in text or "vpermi2b" in text
    assert "vpmulld" not in text
    assert "vpextrb" not in text
    assert "vpmulld" in asm(arithmetic)


@pytest.mark.parametrize(
    ("target", "instruction", "multiply"),
    [
        (VBMI, "vpermb", "vpmulld"),
        (CASCADE_LAKE, "vpshufb", "vpmulld"),
        (HASWELL, "vpshufb", "vpmulld"),
        (ARM, "tbl", "mul\tv"),
    ],
)
def test_packed_lookup_kernel_shuffles_nibbles(target, instruction, multiply):
    """INT4: one ``vpermb`` (VBMI) or ``vpshufb`` (AVX-512 BW) per 64 packed bytes and
    nibble half, or NEON's ``tbl`` per 16; no multiply, no nibble decode into int32 lanes."""
    to_int8 = Node("cast", "int8", (128,), (Node("aggregate", "int32", (128,)),))
    attrs = _attrs(0.1, -1, True, qmin=-8, qmax=7)
    (lookup, _), _ = _kernels(128, "int8", attrs, -8, 0, to_int8, nibble_shuffle(target))
    executable = tvm.compile(lookup, target)
    text = "".join(m.inspect_source("asm") for m in [executable.mod, *executable.mod.imports])
    assert f"\t{instruction}\t" in text
    assert f"\t{multiply}" not in text and "vpsrad" not in text  # (vector multiplies)


def test_only_targets_with_a_byte_permute_look_up():
    assert lookup_supported(VBMI)
    assert not lookup_supported(CASCADE_LAKE)
    assert not lookup_supported(None)
    assert nibble_shuffle(VBMI) == PERMUTE_ONE
    assert nibble_shuffle(CASCADE_LAKE) == SHUFFLE
    assert nibble_shuffle(ARM) == TABLE_LOOKUP
    assert nibble_shuffle(HASWELL) == SHUFFLE_AVX2
    assert nibble_shuffle(tvm.target.Target({"kind": "llvm", "mcpu": "sandybridge"})) is None
    assert nibble_shuffle(None) is None


@pytest.mark.parametrize("nibbles", [None, PERMUTE_ONE])
@pytest.mark.parametrize("width", [146, 300, 1000])
def test_row_scratch_stays_on_the_stack(width, nibbles):
    """No lookup kernel asks TVM's workspace pool for memory: a row's sums live in stack
    buffers under TVM's 1 KB stack limit, whatever the width (above it TVM allocates and
    frees the buffer for every row: +35 % time in ZINC's INT4 aggregations)."""
    attrs = _attrs(0.013, -1, True)
    (lookup, _), _ = _kernels(width, "int8", attrs, -128, -1, None, nibbles)
    llvm_ir = tvm.compile(lookup, VBMI).mod.inspect_source("ll")
    assert "call" in llvm_ir and "TVMBackendAllocWorkspace" not in llvm_ir
