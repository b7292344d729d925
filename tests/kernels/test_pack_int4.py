"""Two 4-bit codes per byte: the TIR packer equals the NumPy one, and unpacking (the kernel
and the values the CSR kernel decodes) gives every code back, signed and unsigned."""

import numpy as np
import pytest
import tvm
from tvm import relax, tirx

from dqc._tvm import tensor
from dqc.kernels import pack_int4

CASES = [("int8", -8, 8), ("uint8", 0, 16)]


@pytest.mark.parametrize(("dtype", "low", "high"), CASES)
@pytest.mark.parametrize("width", [64, 5, 1])
def test_pack_then_unpack_round_trips(dtype, low, high, width):
    codes = np.random.default_rng(width).integers(low, high, (7, width)).astype(dtype)
    packed = pack_int4.pack_array(codes)
    assert packed.shape == (7, -(-width // 2)) and packed.dtype == codes.dtype

    bb = relax.BlockBuilder()
    n = tirx.Var("n", "int64")
    x = relax.Var("x", relax.TensorType([n, width], dtype))
    with bb.function("main", [x]):
        with bb.dataflow():
            p = bb.emit_te(pack_int4.pack, x)
            u = bb.emit_te(pack_int4.unpack, p, width)
            out = bb.emit_output(relax.Tuple([p, u]))
        bb.emit_func_output(out)
    executable = tvm.compile(bb.get(), tvm.target.Target({"kind": "llvm"}))
    vm = relax.VirtualMachine(executable, tvm.cpu())
    tir_packed, unpacked = (t.numpy() for t in vm["main"](tensor(codes)))
    np.testing.assert_array_equal(tir_packed, packed)
    np.testing.assert_array_equal(unpacked, codes)


@pytest.mark.parametrize(("dtype", "low", "high"), CASES)
def test_the_halves_layout(dtype, low, high):
    """Byte b holds code b (low nibble) and code b + H (high nibble)."""
    codes = np.arange(low, low + 6).astype(dtype).reshape(1, 6)
    packed = pack_int4.pack_array(codes).view(np.uint8)[0]
    nibbles = codes.astype(np.int32) & 15
    assert packed.tolist() == (nibbles[0, :3] | nibbles[0, 3:] << 4).tolist()


def test_fits_int4_needs_the_right_signedness():
    assert pack_int4.fits_int4("int8", -8, 7) and pack_int4.fits_int4("uint8", 0, 15)
    assert not pack_int4.fits_int4("int8", 0, 15)  # 15 would read back as -1
    assert not pack_int4.fits_int4("uint8", 0, 16) and not pack_int4.fits_int4("int8", -9, 0)
    assert not pack_int4.fits_int4("int32", 0, 1)
