"""int8 matmul with the ARMv8.2 dot product: ``sdot`` multiplies 4 signed by 4 signed bytes and
accumulates into int32, 4 lanes at a time (16 multiply-adds per instruction).

The VNNI kernel's scheme (``dqc.kernels.dot_product_matmul``) on 128-bit NEON: activations are
int8 (uint8 codes are shifted by -128 beforehand), weights are packed with 4 lanes, including
the ones column whose output is the row sum of ``a``. A tile is eight column blocks (32
outputs) of two rows: 16 accumulators, 8 weight vectors and a broadcast fit NEON's 32
registers.
"""

from __future__ import annotations

from dqc.kernels.dot_product_matmul import dot_product_matmul

SDOT_INTRINSIC = "llvm.aarch64.neon.sdot.v4i32.v16i8"
LANES = 4  # int32 lanes of one instruction: output columns per block
GROUP = 8  # column blocks accumulated together; packed block counts are multiples of it
ROWS = 2  # rows of a tile


def qmatmul_sdot(groups: int, blocks: int):
    """PrimFunc ``(a [m, 4 groups] int8, packed weights) -> [m, 4 blocks] int32``."""
    group = GROUP if blocks % GROUP == 0 else 1
    return dot_product_matmul(SDOT_INTRINSIC, "int8", LANES, groups, blocks, group, ROWS)
