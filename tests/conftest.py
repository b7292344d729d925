"""Shared fixtures: an isolated dqc cache and a private copy of the staged datasets."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Keep PyG's processed files and dqc's cache out of the home directory."""
    old = os.environ.get("DQC_CACHE_DIR")
    os.environ["DQC_CACHE_DIR"] = str(tmp_path_factory.mktemp("dqc-cache"))
    yield
    if old is None:
        os.environ.pop("DQC_CACHE_DIR", None)
    else:
        os.environ["DQC_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def data_root(tmp_path_factory) -> Path:
    """A temp copy of ``../shared/data`` (or ``$DQC_TEST_DATA``): Planetoid, TUDataset and
    ZINC, so nothing is ever written into the shared folder."""
    source = Path(os.environ.get("DQC_TEST_DATA") or SHARED_DATA)
    if not (source / "Planetoid").is_dir():
        message = f"datasets not found under {source} (set DQC_TEST_DATA)"
        if os.environ.get("DQC_REQUIRE_DATA"):
            pytest.fail(message)
        pytest.skip(message)
    root = tmp_path_factory.mktemp("data")
    for name in ("Planetoid", "TUDataset", "ZINC"):
        if (source / name).is_dir():
            shutil.copytree(source / name, root / name)
    return root


@pytest.fixture(scope="session")
def zinc(data_root):
    """ZINC's splits with the training set cut to 1,000 molecules (fast smoke training)."""
    from dqc.graph_datasets import load_graph_dataset

    splits = load_graph_dataset("zinc", data_root)
    splits.train = splits.train[:1000]
    return splits


@pytest.fixture(scope="session")
def trained_zinc(zinc, tmp_path_factory):
    """Checkpoints of graph-level models trained for 2 epochs on ``zinc``, by (arch, scheme,
    pooling, batch_norm); ``batch_norm="after_relu"`` is GIN's ``norm_after_relu``."""
    from dqc.checkpoint import save_checkpoint
    from dqc.graph_training import train_graph_model

    root = tmp_path_factory.mktemp("zinc-checkpoints")
    cache = {}

    def get(arch: str, scheme: str = "dq-int8", pooling: str = "mean", batch_norm=False) -> Path:
        key = (arch, scheme, pooling, batch_norm)
        if key not in cache:
            after_relu = batch_norm == "after_relu"
            model = {"pooling": pooling, "batch_norm": bool(batch_norm)}
            trained = train_graph_model(
                "zinc",
                arch,
                scheme,
                splits=zinc,
                epochs=2,
                progress=False,
                norm_after_relu=after_relu,
                **model,
            )
            norm = "-bn-after-relu" if after_relu else "-bn" * bool(batch_norm)
            path = root / f"{arch}-{scheme}-{pooling}{norm}.pt"
            save_checkpoint(
                path, trained.model, trained.config, "zinc", trained.training, trained.metrics
            )
            cache[key] = path
        return cache[key]

    return get


@pytest.fixture(scope="session")
def cora(data_root):
    from dqc.datasets import load_node_dataset

    return load_node_dataset("cora", data_root)


@pytest.fixture(scope="session")
def trained_cora(cora, tmp_path_factory):
    """Checkpoints of GCN, GIN and GAT trained briefly on Cora, keyed by (arch, scheme)."""
    from dqc.checkpoint import save_checkpoint
    from dqc.training import train_model

    root = tmp_path_factory.mktemp("checkpoints")
    cache = {}

    def get(arch: str, scheme: str = "dq-int8") -> Path:
        if (arch, scheme) not in cache:
            trained = train_model("cora", arch, scheme, data=cora, epochs=30, progress=False)
            path = root / f"{arch}-{scheme}.pt"
            save_checkpoint(
                path, trained.model, trained.config, "cora", trained.training, trained.metrics
            )
            cache[(arch, scheme)] = path
        return cache[(arch, scheme)]

    return get


@pytest.fixture(scope="session")
def compiled_cora(trained_cora, tmp_path_factory):
    """Compiled artifact folders of ``trained_cora`` checkpoints (default target: the host)."""
    from dqc.compiler import compile_checkpoint

    root = tmp_path_factory.mktemp("artifacts")
    cache = {}

    def get(
        arch: str, scheme: str = "dq-int8", quantized: bool = True, target: str = "host"
    ) -> Path:
        key = (arch, scheme, quantized, target)
        if key not in cache:
            out = root / "-".join([arch, scheme, "int" if quantized else "fp32", target])
            compile_checkpoint(trained_cora(arch, scheme), out, target, quantized=quantized)
            cache[key] = out
        return cache[key]

    return get


@pytest.fixture(scope="session")
def tiny():
    """A small synthetic graph and, per (arch, scheme), a briefly trained frozen model with its
    imported Relax module and prepared-graph inputs: fast material for pass tests."""
    import torch

    from dqc import relax_ops  # noqa: F401
    from dqc.frontend.export import GraphBounds, export_program, import_program
    from dqc.frontend.freeze import SELF_LOOPS, freeze
    from dqc.graph_prep import prepare_graph
    from dqc.synthetic import synthetic_graph
    from dqc.training import train_model

    data = synthetic_graph(num_nodes=300, num_features=16, seed=4)
    cache = {}

    def get(arch: str, scheme: str = "dq-int8"):
        if (arch, scheme) not in cache:
            trained = train_model("synthetic", arch, scheme, data=data, epochs=5, progress=False)
            frozen = freeze(trained.model, arch)
            graph = prepare_graph(data.edge_index.numpy(), data.num_nodes, SELF_LOOPS[arch])
            inputs = [data.x.numpy(), graph.src, graph.dst, graph.indptr]
            expected = frozen(*(torch.from_numpy(a) for a in inputs)).numpy()
            mod = import_program(export_program(frozen, 16, GraphBounds()))
            cache[(arch, scheme)] = (mod, inputs, expected)
        return cache[(arch, scheme)]

    return get


def run_relax_outputs(mod, inputs, function: str = "main", target=None) -> list:
    """Legalize (dqc's kernels, no schedules), build for ``target`` (default: generic x86)
    and run ``function`` here: all its outputs, as NumPy arrays."""
    import tvm
    from dqc.passes.legalize import DQC_LEGALIZE_MAP
    from tvm import relax

    from dqc._tvm import tensor

    mod = relax.transform.LegalizeOps(customize_legalize_map=DQC_LEGALIZE_MAP)(mod)
    target = target or tvm.target.Target({"kind": "llvm"})
    vm = relax.VirtualMachine(tvm.compile(mod, target), tvm.cpu())
    out = vm[function](*[tensor(a) for a in inputs])
    return [out.numpy()] if hasattr(out, "numpy") else [t.numpy() for t in out]


def run_relax(mod, inputs, function: str = "main", target=None):
    """The first output of ``run_relax_outputs``."""
    return run_relax_outputs(mod, inputs, function, target)[0]


def count_ops(mod, name: str) -> int:
    """Calls of operator ``name`` in ``mod``'s Relax functions (``call_tir`` callees by prefix)."""
    text = "\n".join(
        f.script(show_meta=False) for gv, f in mod.functions.items() if not hasattr(f, "buffer_map")
    )
    return text.count(f'"{name}"') if name.startswith("dqc.") else text.count(f"{name}(")


@pytest.fixture(scope="session")
def arm_toolchain():
    """Skips (fails under ``DQC_REQUIRE_ARM``, as in CI) without the aarch64 cross compiler
    and qemu-user."""
    missing = [t for t in ("aarch64-linux-gnu-g++", "qemu-aarch64") if shutil.which(t) is None]
    if missing:
        install = "apt-get install g++-aarch64-linux-gnu qemu-user"
        message = f"{', '.join(missing)} not installed ({install})"
        if os.environ.get("DQC_REQUIRE_ARM"):
            pytest.fail(message)
        pytest.skip(message)


# Exactness cases of the dot-product matmuls: (activation dtype, K, N, nonzero density);
# dense and bag-of-words rows (zero words skipped), odd K and N.
QMATMUL_CASES = [
    ("int8", 1433, 64, 1.0),
    ("uint8", 70, 41, 1.0),
    ("int8", 3, 7, 1.0),
    ("uint8", 1433, 64, 0.02),
]


def qmatmul_operands(
    dtype: str, k: int, n: int, density: float = 1.0, seed: int = 0, rows: int = 37
):
    """Activations ``[rows, k]`` (a zero row and a row of the largest code included) and int8
    weights ``[k, n]`` (a column of -128), for ``dqc.qmatmul``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    low, high = (-128, 128) if dtype == "int8" else (0, 256)
    a = rng.integers(low, high, (rows, k)) * (rng.random((rows, k)) < density)
    a[5 % rows], a[6 % rows] = 0, high - 1
    w = rng.integers(-128, 128, (k, n)).astype(np.int8)
    w[:, 0] = -128
    return a.astype(dtype), w


def qmatmul_module(weights, dtype: str, target, a_zero: int = 5, b_zero: int = -3):
    """``main(x [m, K] dtype) = dqc.qmatmul(x, weights)`` legalized for ``target``, and the
    names of its kernels."""
    import tvm
    from dqc.passes.legalize import DQC_LEGALIZE_MAP
    from tvm import relax, tirx

    from dqc import relax_ops

    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType([tirx.Var("m", "int64"), weights.shape[0]], dtype))
    with bb.function("main", [x]):
        with bb.dataflow():
            call = relax_ops.call(
                "dqc.qmatmul", [x, relax.const(weights)], a_zero=a_zero, b_zero=b_zero
            )
            out = bb.emit_output(bb.emit(call))
        bb.emit_func_output(out)
    with tvm.target.Target(target):
        mod = relax.transform.LegalizeOps(customize_legalize_map=DQC_LEGALIZE_MAP)(bb.get())
    return mod, [gv.name_hint for gv in mod.get_global_vars()]


def assert_qmatmul_exact(case: tuple, target, kernel: str, rows: int = 37) -> None:
    """``dqc.qmatmul`` of ``QMATMUL_CASES`` entry ``case`` with ``rows`` activation rows,
    built for ``target`` (run on this CPU), uses ``kernel`` and equals the int64 product of
    the zero-centred codes."""
    import numpy as np
    import tvm
    from tvm import relax

    from dqc._tvm import tensor

    a, w = qmatmul_operands(*case, rows=rows)
    mod, kernels = qmatmul_module(w, str(a.dtype), target)
    assert kernel in kernels
    vm = relax.VirtualMachine(tvm.compile(mod, target), tvm.cpu())
    out = vm["main"](tensor(a)).numpy()
    np.testing.assert_array_equal(out, (a.astype(np.int64) - 5) @ (w.astype(np.int64) + 3))


def gather_sum_kernel(width: int, dtype: str, packed: bool = False):
    """``out[i] = sum of x[source] over row i's edges`` as a ``dqc_spmm_csr`` kernel with
    dqc's row schedule (an IRModule for ``tvm.compile``); ``packed``: x holds 4-bit codes,
    two per byte (``dqc.kernels.pack_int4``)."""
    from dqc.schedules.spmm_csr import schedule_rows
    from tvm import s_tir

    from dqc.kernels.spmm_csr import Leaf, Node, spmm_csr

    acc = "int32" if dtype == "int8" else "float32"
    message = Node("cast", acc, (width,), (Node("leaf", dtype, (width,), leaf=0),))
    leaf = Leaf("gather", dtype, (width,), packed)
    sch = s_tir.Schedule(spmm_csr(message, [leaf], acc, "int64"))
    schedule_rows(sch)
    return sch.mod
