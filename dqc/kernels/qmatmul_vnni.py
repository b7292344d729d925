"""int8 matmul with AVX-512 VNNI: ``vpdpbusd`` multiplies 4 unsigned by 4 signed bytes and
accumulates into int32, 16 lanes at a time (64 multiply-adds per instruction).

Layout: activations ``a`` are uint8 ``[M, 4G]`` (K padded to a multiple of 4); weights are
packed at compile time as ``[N/16, G, 16, 4]`` int8, so one 64-byte load feeds one
instruction, and each row of ``a`` contributes 4 bytes broadcast to all 16 lanes. Eight
column blocks are accumulated together (eight independent ``vpdpbusd`` chains hide its
latency).

Row sums of ``a`` (the zero-point correction) come for free: the packing
(``qmatmul.pack_weights``) adds a weight column of ones, so ``out[:, N]`` is ``sum_k a[:, k]``.
"""

from __future__ import annotations

from tvm.script import tirx as T

VNNI_INTRINSIC = "llvm.x86.avx512.vpdpbusd.512"
LANES = 16  # int32 lanes of one instruction: output columns per block


def qmatmul_vnni(groups: int, blocks: int):
    """PrimFunc ``(a [m, 4 groups] uint8, packed weights) -> [m, 16 blocks] int32``."""
    group = max(d for d in range(1, 9) if blocks % d == 0)

    @T.prim_func
    def dqc_qmatmul_vnni(var_a: T.handle, var_w: T.handle, var_out: T.handle):
        T.func_attr({"tirx.noalias": True})
        m = T.int64()
        a = T.match_buffer(var_a, (m, groups * 4), "uint8")
        w = T.match_buffer(var_w, (blocks * groups * 64,), "int8")
        out = T.match_buffer(var_out, (m, blocks * 16), "int32")
        for i in T.parallel(m):
            for jg in range(blocks // group):
                acc = T.decl_buffer(
                    (group * 16,), "int32", scope="global"
                )  # "global": on the stack, so in registers
                for jb in T.unroll(group):
                    acc[T.ramp(jb * 16, 1, 16)] = T.broadcast(T.int32(0), 16)
                for ko in range(groups):
                    for jb in T.unroll(group):
                        acc[T.ramp(jb * 16, 1, 16)] = T.call_llvm_pure_intrin(
                            "int32x16",
                            VNNI_INTRINSIC,
                            acc[T.ramp(jb * 16, 1, 16)],
                            T.reinterpret(  # 4 bytes of row i, in every lane
                                "int8x64",
                                T.broadcast(T.reinterpret("int32", a[i, T.ramp(ko * 4, 1, 4)]), 16),
                            ),
                            w[T.ramp(((jg * group + jb) * groups + ko) * 64, 1, 64)],
                        )
                for jb in T.unroll(group):
                    out[i, T.ramp((jg * group + jb) * 16, 1, 16)] = acc[T.ramp(jb * 16, 1, 16)]

    return dqc_qmatmul_vnni
