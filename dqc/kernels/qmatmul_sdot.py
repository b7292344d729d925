"""int8 matmul with the ARMv8.2 dot product: ``sdot`` multiplies 4 signed by 4 signed bytes and
accumulates into int32, 4 lanes at a time (16 multiply-adds per instruction).

The same scheme as the VNNI kernel (``qmatmul_vnni``) on 128-bit NEON: activations ``a`` are
int8 ``[M, 4G]`` (uint8 codes are shifted by -128 beforehand), weights are packed at compile
time as ``[blocks, G, 4, 4]`` int8 (``qmatmul.pack_weights`` with 4 lanes, including the ones
column whose output is the row sum of ``a``). Eight column blocks (32 outputs) are accumulated
together: eight independent ``sdot`` chains keep the pipeline full and fit NEON's 32 registers.
"""

from __future__ import annotations

from tvm.script import tirx as T

SDOT_INTRINSIC = "llvm.aarch64.neon.sdot.v4i32.v16i8"
LANES = 4  # int32 lanes of one instruction: output columns per block
GROUP = 8  # column blocks accumulated together; packed block counts are multiples of it


def qmatmul_sdot(groups: int, blocks: int):
    """PrimFunc ``(a [m, 4 groups] int8, packed weights) -> [m, 4 blocks] int32``."""
    group = GROUP if blocks % GROUP == 0 else 1

    @T.prim_func
    def dqc_qmatmul_sdot(var_a: T.handle, var_w: T.handle, var_out: T.handle):
        T.func_attr({"tirx.noalias": True})
        m = T.int64()
        a = T.match_buffer(var_a, (m, groups * 4), "int8")
        w = T.match_buffer(var_w, (blocks * groups * 16,), "int8")
        out = T.match_buffer(var_out, (m, blocks * 4), "int32")
        for i in T.parallel(m):
            for jg in range(blocks // group):
                acc = T.decl_buffer(
                    (group * 4,), "int32", scope="global"
                )  # "global": on the stack, so in registers
                for jb in T.unroll(group):
                    acc[T.ramp(jb * 4, 1, 4)] = T.broadcast(T.int32(0), 4)
                for ko in range(groups):
                    for jb in T.unroll(group):
                        acc[T.ramp(jb * 4, 1, 4)] = T.call_llvm_pure_intrin(
                            "int32x4",
                            SDOT_INTRINSIC,
                            acc[T.ramp(jb * 4, 1, 4)],
                            T.reinterpret(  # 4 bytes of row i, in every lane
                                "int8x16",
                                T.broadcast(T.reinterpret("int32", a[i, T.ramp(ko * 4, 1, 4)]), 4),
                            ),
                            w[T.ramp(((jg * group + jb) * groups + ko) * 16, 1, 16)],
                        )
                for jb in T.unroll(group):
                    out[i, T.ramp((jg * group + jb) * 4, 1, 4)] = acc[T.ramp(jb * 4, 1, 4)]

    return dqc_qmatmul_sdot
