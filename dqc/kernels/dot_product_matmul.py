"""Row-tiled int8 matmul on a 4-byte dot-product instruction (x86 ``vpdpbusd``, ARM ``sdot``).

The instruction multiplies 4 bytes of ``a`` by 4 bytes of the weights in each of ``lanes``
int32 lanes and adds the products to that lane. Activations ``a`` are ``[M, 4G]`` (K padded
to a multiple of 4); weights are packed at compile time as ``[blocks, G, lanes, 4]``
(``qmatmul.pack_weights``), so one vector load feeds one instruction, and each row of ``a``
contributes 4 bytes broadcast to all lanes.

A tile of ``rows`` rows by ``group`` column blocks is accumulated in registers over the whole
reduction: each weight vector loaded serves every row of the tile, and the ``rows * group``
independent accumulator chains hide the instruction's latency. The last tile re-reads the
last row of ``a`` in place of missing rows and does not store them.

Groups of 4 zero bytes in every row of a tile add nothing and are skipped: bag-of-words
features such as Cora's are ~99 % zeros, which quantize to byte 0 when their range starts at
0 (Cora's 2,708 x 1,433 x 64 matmul: 0.70 -> 0.25 ms on 2 Zen 4 cores). On dense rows the
test costs ~3 % (50,000 x 602 x 128: 11.0 -> 11.4 ms).
"""

from __future__ import annotations

from tvm.script import tirx as T


def dot_product_matmul(
    intrinsic: str, a_dtype: str, lanes: int, groups: int, blocks: int, group: int, rows: int
):
    """PrimFunc ``(a [m, 4 groups] a_dtype, packed weights) -> [m, lanes * blocks] int32``,
    ``rows x group`` accumulators per tile (``group`` divides ``blocks``)."""
    vector, operand = f"int32x{lanes}", f"int8x{4 * lanes}"

    @T.prim_func
    def dot_matmul(var_a: T.handle, var_w: T.handle, var_out: T.handle):
        T.func_attr({"tirx.noalias": True})
        m = T.int64()
        a = T.match_buffer(var_a, (m, groups * 4), a_dtype)
        w = T.match_buffer(var_w, (blocks * groups * 4 * lanes,), "int8")
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
                    for r in T.unroll(rows):  # 4 bytes of each row
                        words[r] = T.reinterpret(
                            "int32", a[T.min(tile * rows + r, m - 1), T.ramp(ko * 4, 1, 4)]
                        )
                        words[rows] = words[rows] | words[r]
                    if words[rows] != 0:  # zero bytes add nothing: sparse rows skip them
                        for r in T.unroll(rows):
                            for jb in T.unroll(group):
                                acc[T.ramp((r * group + jb) * lanes, 1, lanes)] = (
                                    T.call_llvm_pure_intrin(
                                        vector,
                                        intrinsic,
                                        acc[T.ramp((r * group + jb) * lanes, 1, lanes)],
                                        T.reinterpret(operand, T.broadcast(words[r], lanes)),
                                        w[
                                            T.ramp(
                                                ((jg * group + jb) * groups + ko) * 4 * lanes,
                                                1,
                                                4 * lanes,
                                            )
                                        ],
                                    )
                                )
                for r in T.unroll(rows):
                    if tile * rows + r < m:
                        for jb in T.unroll(group):
                            out[tile * rows + r, T.ramp((jg * group + jb) * lanes, 1, lanes)] = acc[
                                T.ramp((r * group + jb) * lanes, 1, lanes)
                            ]

    return dot_matmul
