"""Row-tiled integer matmul on a dot-product instruction over 4-byte words: x86 ``vpdpbusd``
and ARM ``sdot`` (4 bytes), AVX2 ``vpmaddwd`` (2 int16).

The instruction multiplies the ``P`` elements of a word of ``a`` (4 int8 or 2 int16) by ``P``
weights in each of ``lanes`` int32 lanes and adds the products to that lane. Activations
``a`` are ``[M, P G]`` (K padded to a multiple of ``P``); weights are packed at compile time
as ``[blocks, G, lanes, P]`` (``qmatmul.pack_weights``), so one vector load feeds one
instruction, and each row of ``a`` contributes one word broadcast to all lanes.

A tile of ``rows`` rows by ``group`` column blocks is accumulated in registers over the whole
reduction: each weight vector loaded serves every row of the tile, and the ``rows * group``
independent accumulator chains hide the instruction's latency. The last tile re-reads the
last row of ``a`` in place of missing rows and does not store them.

Zero words in every row of a tile add nothing and are skipped: bag-of-words
features such as Cora's are ~99 % zeros, which quantize to byte 0 when their range starts at
0 (Cora's 2,708 x 1,433 x 64 matmul: 0.70 -> 0.25 ms on 2 Zen 4 cores). On dense rows the
test costs ~3 % (50,000 x 602 x 128: 11.0 -> 11.4 ms).
"""

from __future__ import annotations

from tvm.script import tirx as T

# Elements of ``a`` in one 4-byte word: what one lane's dot product multiplies.
WORD_ELEMENTS = {"int8": 4, "uint8": 4, "int16": 2}


def dot_product_matmul(
    intrinsic: str, a_dtype: str, lanes: int, groups: int, blocks: int, group: int, rows: int
):
    """PrimFunc ``(a [m, P groups] a_dtype, packed weights) -> [m, lanes * blocks] int32``,
    ``rows x group`` accumulators per tile (``group`` divides ``blocks``). 8-bit ``a_dtype``
    takes an instruction that adds to its first operand, (acc, word, weights) -> acc;
    int16 one that returns the products' pair sums, (word, weights) -> sums."""
    per = WORD_ELEMENTS[a_dtype]
    weight_dtype = "int16" if per == 2 else "int8"
    vector, operand = f"int32x{lanes}", f"{weight_dtype}x{per * lanes}"

    @T.prim_func
    def dot_matmul(var_a: T.handle, var_w: T.handle, var_out: T.handle):
        T.func_attr({"tirx.noalias": True})
        m = T.int64()
        a = T.match_buffer(var_a, (m, groups * per), a_dtype)
        w = T.match_buffer(var_w, (blocks * groups * per * lanes,), weight_dtype)
        out = T.match_buffer(var_out, (m, blocks * lanes), "int32")
        for tile in T.parallel((m + rows - 1) // rows):
            for jg in range(blocks // group):
                acc = T.decl_buffer(
                    (rows * group * lanes,), "int32", scope="global"
                )  # "global": on the stack, so in registers
                for r in T.unroll(rows):
                    for jb in T.unroll(group):
                        acc[T.ramp((r * group + jb) * lanes, 1, lanes)] = T.broadcast(
                            T.int32(0), lanes
                        )
                for ko in range(groups):
                    words = T.decl_buffer((rows + 1,), "int32", scope="global")
                    words[rows] = 0  # the OR of the rows' words
                    for r in T.unroll(rows):  # one word of each row
                        words[r] = T.reinterpret(
                            "int32", a[T.min(tile * rows + r, m - 1), T.ramp(ko * per, 1, per)]
                        )
                        words[rows] = words[rows] | words[r]
                    if words[rows] != 0:  # zero words add nothing: sparse rows skip them
                        for r in T.unroll(rows):
                            for jb in T.unroll(group):
                                word = T.reinterpret(operand, T.broadcast(words[r], lanes))
                                weights = w[
                                    T.ramp(
                                        ((jg * group + jb) * groups + ko) * per * lanes,
                                        1,
                                        per * lanes,
                                    )
                                ]
                                tile_acc = acc[T.ramp((r * group + jb) * lanes, 1, lanes)]
                                if per == 2:
                                    acc[T.ramp((r * group + jb) * lanes, 1, lanes)] = (
                                        tile_acc
                                        + T.call_llvm_pure_intrin(vector, intrinsic, word, weights)
                                    )
                                else:
                                    acc[T.ramp((r * group + jb) * lanes, 1, lanes)] = (
                                        T.call_llvm_pure_intrin(
                                            vector, intrinsic, tile_acc, word, weights
                                        )
                                    )
                for r in T.unroll(rows):
                    if tile * rows + r < m:
                        for jb in T.unroll(group):
                            out[tile * rows + r, T.ramp((jg * group + jb) * lanes, 1, lanes)] = acc[
                                T.ramp((r * group + jb) * lanes, 1, lanes)
                            ]

    return dot_matmul
