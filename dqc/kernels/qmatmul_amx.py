"""int8 matmul on Intel AMX tiles: ``tdpbusd`` multiplies a 16 x 64 tile of unsigned bytes
by a 64 x 16 tile of signed bytes into a 16 x 16 int32 tile (16,384 multiply-adds per
instruction, against 64 for a ``vpdpbusd``).

Same operands as the VNNI kernel (``dqc.kernels.dot_product_matmul``): uint8 activations
``[m, K]`` and the packed weights ``[blocks, K / 4, 16, 4]`` (``qmatmul.pack_weights``), with
K padded to a multiple of 64: 16 consecutive 4-byte groups of one block are exactly the
64-byte rows of a weight tile, loaded in place. A row sum column comes out as with VNNI.

Tiles 0-5 hold the sums of up to six column blocks of 16 rows; tile 6 the rows' 64 bytes
of the current K step, tile 7 one block's weights. The last, partial row tile is read from a
zero-padded copy and written through a buffer, so no tile load or store leaves the tensors.

Fused with the input's quantization (``quantize``: the ``dqc.quantize_checked`` arguments of
the model's first layer), the kernel reads float ``x``, quantizes each tile's 16 rows into a
stack buffer the tile loads from, and flags rows holding NaN or Inf: the codes never travel
through memory (Reddit-shaped, 2 cores: 30 MB not written and read back, the forward pass
74.2 -> 72.2 ms), and the next tile's rows of ``x`` are requested while this one multiplies.

AMX's 8 KB tile state needs the OS's leave per process (Linux ``arch_prctl
ARCH_REQ_XCOMP_PERM``): the kernel asks on every call (a no-op once granted) and fails with
a message, not an illegal instruction, where it is refused. Each parallel task loads the tile
configuration, which is per thread.
"""

from __future__ import annotations

import ctypes
import math
import platform
import sys

from tvm import tirx
from tvm.script.ir_builder import IRBuilder
from tvm.script.ir_builder import tirx as T

from dqc.kernels.quantize import input_code, non_finite_flag

ROWS = 16  # rows of a tile
K_STEP = 64  # bytes of a row of ``a`` in one tile: K is padded to a multiple
LANES = 16  # int32 columns of one sum tile: output columns per block
SUM_TILES = 6
ACTIVATION_TILE, WEIGHT_TILE = 6, 7
TILES_PER_TASK = 4  # row tiles a parallel task runs after loading the configuration
CACHE_LINE = 64
# Rows of x requested ahead of their quantization (a tile: the next tile's rows load while
# this one multiplies; Reddit-shaped first layer 13.0 -> 10.8 ms, 32 rows no better)
PREFETCH_ROWS = ROWS
AMX_FEATURES = ["amx-tile", "amx-int8"]  # LLVM's names of what the kernel needs
AMX_ATTR = "dqc.qmatmul_amx"  # {groups, blocks}: the kernel's shape, for FuseInputMatmul
# Linux: arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA), through syscall(2)
SYS_ARCH_PRCTL, ARCH_REQ_XCOMP_PERM, XTILEDATA = 158, 0x1023, 18


def amx_granted() -> bool:
    """Whether Linux grants this process AMX's tile data (the request every AMX kernel makes
    too): False on other systems, older kernels and CPUs without AMX."""
    if sys.platform != "linux" or platform.machine() != "x86_64":
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.syscall(SYS_ARCH_PRCTL, ARCH_REQ_XCOMP_PERM, XTILEDATA) == 0


def _tile(op: str, *args) -> None:
    """Emit the AMX instruction ``op`` (tile numbers are immediates)."""
    args = [tirx.const(a, "int8") if isinstance(a, int) else a for a in args]
    T.evaluate(tirx.call_llvm_intrin("void", f"llvm.x86.{op}", *args))


def _configure() -> None:
    """Load the tile configuration (per thread): palette 1, 8 tiles of 16 rows x 64 bytes."""
    config = T.decl_buffer((64,), "uint8", scope="global")  # on the stack
    with T.serial(64) as i:
        T.buffer_store(config, tirx.const(0, "uint8"), [i])
    T.buffer_store(config, tirx.const(1, "uint8"), [0])
    for t in range(8):
        T.buffer_store(config, tirx.const(64, "uint8"), [16 + 2 * t])  # bytes per row, uint16
        T.buffer_store(config, tirx.const(ROWS, "uint8"), [48 + t])
    _tile("ldtilecfg", tirx.address_of(config[0]))


def _multiply_rows(rows, stride, w, groups: int, blocks: int, store) -> None:
    """Tile sums of 16 rows (``rows(s)``: the address of K step ``s``, rows ``stride``
    bytes apart) by every block of weights; ``store(tile, column)`` writes each sum tile."""
    group = max(d for d in range(1, SUM_TILES + 1) if blocks % d == 0)
    with T.serial(blocks // group) as jg:
        for c in range(group):
            _tile("tilezero", c)
        with T.serial(groups // (K_STEP // 4)) as s:
            _tile("tileloadd64", ACTIVATION_TILE, rows(s), stride)
            for c in range(group):
                start = ((jg * group + c) * groups + s * (K_STEP // 4)) * 4 * LANES
                _tile(
                    "tileloadd64", WEIGHT_TILE, tirx.address_of(w[start]), tirx.const(64, "int64")
                )
                _tile("tdpbusd", c, ACTIVATION_TILE, WEIGHT_TILE)
        for c in range(group):
            store(c, (jg * group + c) * LANES)


def _copy_rows(a, row, m, padded, width: int) -> None:
    """Rows ``row ..`` of ``a`` into ``padded`` (16 rows), zeros past row ``m``."""
    with T.serial(ROWS) as r:
        with T.serial(width) as j:
            inside = row + r < m
            value = tirx.if_then_else(
                inside, a[tirx.min(row + r, m - 1), j], tirx.const(0, "uint8")
            )
            T.buffer_store(padded, value, [r * width + j])


def _quantize_rows(x, non_finite, quantize: dict, row, m, padded, width: int) -> None:
    """Codes of rows ``row ..`` of ``x`` into ``padded`` (16 rows, zeros past row ``m`` and
    past the features) as ``quantize_checked`` writes them, and the rows' NaN / Inf flags."""
    features = int(quantize["features"])
    zero = tirx.const(0, "uint8")
    with T.serial(ROWS) as r:
        with T.If(row + r < m):
            with T.Then():
                ahead = tirx.min(row + r + PREFETCH_ROWS, m - 1)
                with T.serial(math.ceil(features * 4 / CACHE_LINE)) as line:
                    address = tirx.address_of(x[ahead, line * (CACHE_LINE // 4)])
                    T.evaluate(tirx.call_intrin("void", "tirx.prefetch", address, 0, 3, 1))
                T.buffer_store(non_finite, tirx.const(0, "int8"), [row + r])
                with T.serial(features) as j:
                    value = x[row + r, j]
                    code = input_code(value, quantize, quantize["recode"])
                    T.buffer_store(padded, code, [r * width + j])
                    flag = non_finite[row + r] | non_finite_flag(value)
                    T.buffer_store(non_finite, flag, [row + r])
                with T.serial(features, width) as j:
                    T.buffer_store(padded, zero, [r * width + j])
            with T.Else():
                with T.serial(width) as j:
                    T.buffer_store(padded, zero, [r * width + j])


def _stores(out, sums, row, m, columns: int):
    """``store(tile, column)`` for a whole tile (straight into ``out``) and for the last,
    partial one (through ``sums``, then its rows below ``m``)."""

    def whole(tile: int, column) -> None:
        target = tirx.address_of(out[row, column])
        _tile("tilestored64", tile, target, tirx.const(4 * columns, "int64"))

    def partial(tile: int, column) -> None:
        _tile("tilestored64", tile, tirx.address_of(sums[0]), tirx.const(4 * LANES, "int64"))
        with T.serial(ROWS) as r:
            with T.If(row + r < m):
                with T.Then():
                    with T.serial(LANES) as j:
                        T.buffer_store(out, sums[r * LANES + j], [row + r, column + j])

    return whole, partial


def _row_tile(buffers, row, m, groups: int, blocks: int, quantize: dict | None) -> None:
    """Output rows ``row .. row + 16`` (those below ``m``): a whole tile of ``a`` is read in
    place, a partial one (and every tile of quantized ``x``) from ``padded``."""
    source, w, out, non_finite, padded, sums = buffers
    width, columns = 4 * groups, LANES * blocks
    stride = tirx.const(width, "int64")
    if quantize is not None:
        _quantize_rows(source, non_finite, quantize, row, m, padded, width)
    whole, partial = _stores(out, sums, row, m, columns)

    def buffered(s):
        return tirx.address_of(padded[s * K_STEP])

    def in_place(s):
        return tirx.address_of(source[row, s * K_STEP])

    with T.If(row + ROWS <= m):
        with T.Then():
            rows = in_place if quantize is None else buffered
            _multiply_rows(rows, stride, w, groups, blocks, whole)
        with T.Else():
            if quantize is None:
                _copy_rows(source, row, m, padded, width)
            _multiply_rows(buffered, stride, w, groups, blocks, partial)


def qmatmul_amx(groups: int, blocks: int, quantize: dict | None = None):
    """PrimFunc ``(a [m, 4 groups] uint8, packed weights) -> [m, 16 blocks] int32``;
    ``groups`` (4-byte groups of K) a multiple of 16. With ``quantize`` (a
    ``dqc.quantize_checked`` attribute whose recode writes this kernel's operands):
    ``(x [m, features] float32, packed weights) -> ([m, 16 blocks] int32, non_finite [m] int8)``."""
    if groups % (K_STEP // 4):
        raise ValueError(f"AMX needs K padded to a multiple of {K_STEP}, got {4 * groups}")
    width, columns = 4 * groups, LANES * blocks
    with IRBuilder() as ib:
        with T.prim_func():
            T.func_name("dqc_qmatmul_amx")
            T.func_attr({"tirx.noalias": True, AMX_ATTR: {"groups": groups, "blocks": blocks}})
            m = tirx.Var("m", "int64")
            if quantize is None:
                a = T.match_buffer(T.arg("a", T.handle()), (m, width), "uint8")
            else:
                features = int(quantize["features"])
                x = T.match_buffer(T.arg("x", T.handle()), (m, features), "float32")
            w = T.match_buffer(T.arg("w", T.handle()), (blocks * groups * 4 * LANES,), "int8")
            out = T.match_buffer(T.arg("out", T.handle()), (m, columns), "int32")
            non_finite = None
            if quantize is not None:
                non_finite = T.match_buffer(T.arg("non_finite", T.handle()), (m,), "int8")
            granted = tirx.call_extern(
                "int64",
                "syscall",
                *(tirx.const(v, "int64") for v in (SYS_ARCH_PRCTL, ARCH_REQ_XCOMP_PERM, XTILEDATA)),
            )
            message = "AMX tile data refused: this CPU lacks AMX, or the OS predates Linux 5.16"
            with T.Assert(granted == tirx.const(0, "int64"), message):
                tasks = (m + ROWS * TILES_PER_TASK - 1) // (ROWS * TILES_PER_TASK)
                with T.parallel(0, tasks) as task:
                    _configure()
                    padded = T.decl_buffer((ROWS * width,), "uint8", scope="global")
                    sums = T.decl_buffer((ROWS * LANES,), "int32", scope="global")
                    with T.serial(TILES_PER_TASK) as tile:
                        row = (task * TILES_PER_TASK + tile) * ROWS
                        with T.If(row < m):
                            with T.Then():
                                source = a if quantize is None else x
                                buffers = (source, w, out, non_finite, padded, sums)
                                _row_tile(buffers, row, m, groups, blocks, quantize)
                    _tile("tilerelease")
    return ib.get()
