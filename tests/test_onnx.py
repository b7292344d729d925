"""ONNX: QDQ export run by ONNX Runtime, and ONNX models compiled by dqc through TVM's ONNX
frontend into the same integer program as the PyTorch path."""

import json
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper

import dqc
from dqc import edge_softmax as softmax_spec
from dqc.compiler import compile_checkpoint
from dqc.evaluation import evaluate_artifact
from dqc.onnx_evaluation import evaluate_onnx
from dqc.onnx_export import export_onnx
from dqc.onnx_runtime import OnnxModel

ARCHS = ["gcn", "gin", "gat"]


@pytest.fixture(scope="module")
def exported(trained_cora, tmp_path_factory):
    root = tmp_path_factory.mktemp("onnx")
    cache = {}

    def get(arch: str, quantized: bool = True, scheme: str = "dq-int8"):
        key = (arch, quantized, scheme)
        if key not in cache:
            path = root / f"{arch}-{scheme if quantized else 'fp32'}.onnx"
            cache[key] = export_onnx(trained_cora(arch, scheme), path, quantized)
        return cache[key]

    return get


@pytest.mark.parametrize("arch", ARCHS)
def test_onnx_runtime_agrees_with_fake_quant(exported, trained_cora, data_root, arch):
    model = onnx.load(str(exported(arch)))
    ops = {node.op_type for node in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "ScatterND"} <= ops
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # dynamic nodes
    result = evaluate_onnx(exported(arch), trained_cora(arch), data_root)
    assert result["agreement"] >= 99.5, result


@pytest.mark.parametrize(
    "arch, scheme", [("gcn", "dq-int8"), ("gin", "dq-int8"), ("gat", "dq-int8"), ("gcn", "dq-int4")]
)
def test_onnx_compiles_to_the_pytorch_program(
    exported, compiled_cora, cora, data_root, tmp_path, arch, scheme
):
    out = tmp_path / "from-onnx"
    compile_checkpoint(exported(arch, scheme=scheme), out)
    x, edge_index = cora.x.numpy(), cora.edge_index.numpy()
    from_onnx = dqc.load(out).predict(x, edge_index)
    from_pt = dqc.load(compiled_cora(arch, scheme)).predict(x, edge_index)
    np.testing.assert_array_equal(from_onnx, from_pt)
    report = evaluate_artifact(out, data_root=data_root)
    assert report["bitexact_with_reference"] is True
    assert report["agreement"] >= 99.5


def test_fp32_export_runs_the_float_model(exported, trained_cora, data_root):
    result = evaluate_onnx(exported("gat", quantized=False), trained_cora("gat"), data_root)
    assert result["scheme"] == "fp32" and result["agreement"] >= 95.0


def test_edge_softmax_function_is_the_integer_spec(tmp_path):
    """ONNX Runtime's run of ``ai.dqc.EdgeSoftmax`` equals ``dqc.edge_softmax`` bit for bit."""

    class Softmax(torch.nn.Module):
        def forward(self, codes, dst, indptr):
            return torch.ops.dqc.edge_softmax(codes, dst, indptr, 0.05, 3, -128, 127, 0.2)

    from dqc.onnx_export import DQC_DOMAIN, TRANSLATIONS, EdgeSoftmax

    rng = np.random.default_rng(0)
    counts = rng.integers(1, 9, size=40)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    dst = np.repeat(np.arange(40), counts).astype(np.int64)
    codes = rng.integers(-128, 128, size=(dst.size, 3)).astype(np.int8)
    args = tuple(torch.from_numpy(a) for a in (codes, dst, indptr))
    program = torch.onnx.export(
        Softmax().eval(), args, dynamo=True, custom_translation_table=TRANSLATIONS, opset_version=18
    )
    model = program.model_proto
    model.functions.append(EdgeSoftmax.to_function_proto())
    assert any(node.domain == DQC_DOMAIN for node in model.graph.node)
    session = ort.InferenceSession(model.SerializeToString())
    names = [i.name for i in session.get_inputs()]
    (weights,) = session.run(None, dict(zip(names, (codes, dst, indptr), strict=True)))
    expected = softmax_spec.edge_softmax(codes, indptr, 0.05, 3, -128, 127, 0.2)
    np.testing.assert_array_equal(weights, expected)


def _scatter_model() -> onnx.ModelProto:
    """``out[dst[e]] += x[src[e]]`` with ScatterND(reduction="add"), inputs as dqc exports."""
    nodes = [
        helper.make_node("Gather", ["x", "src"], ["messages"], axis=0),
        helper.make_node("Unsqueeze", ["dst", "axis1"], ["rows"]),
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("ConstantOfShape", ["shape"], ["zeros"]),
        helper.make_node("ScatterND", ["zeros", "rows", "messages"], ["out"], reduction="add"),
    ]
    inputs = [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, ["num_nodes", 3]),
        helper.make_tensor_value_info("src", TensorProto.INT64, ["num_edges"]),
        helper.make_tensor_value_info("dst", TensorProto.INT64, ["num_edges"]),
        helper.make_tensor_value_info("indptr", TensorProto.INT64, ["num_nodes + 1"]),
    ]
    output = helper.make_tensor_value_info("out", TensorProto.FLOAT, ["num_nodes", 3])
    axis = helper.make_tensor("axis1", TensorProto.INT64, [1], [1])
    graph = helper.make_graph(nodes, "scatter", inputs, [output], initializer=[axis])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def test_scatter_add_with_repeated_targets_imports_as_index_add():
    """TVM's own scatter imports have had reduction bugs; dqc's converter turns an
    aggregation into ``dqc.index_add``, which must sum every repeated target."""
    import tvm
    from dqc.passes.legalize import DQC_LEGALIZE_MAP
    from tvm import relax

    from dqc.frontend.onnx_import import import_onnx

    model = _scatter_model()
    mod = import_onnx(model, num_features=3)
    assert "dqc.index_add" in mod.script() and "scatter_nd" not in mod.script()
    mod = relax.transform.LegalizeOps(customize_legalize_map=DQC_LEGALIZE_MAP)(mod)
    vm = relax.VirtualMachine(tvm.compile(mod, "llvm"), tvm.cpu())

    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 3)).astype(np.float32)
    dst = np.array([0, 0, 0, 2, 2, 4], np.int64)  # node 0 three times, node 1 and 3 never
    src = np.array([1, 2, 3, 0, 4, 4], np.int64)
    indptr = np.array([0, 3, 3, 5, 5, 6], np.int64)
    feeds = {"x": x, "src": src, "dst": dst, "indptr": indptr}
    (expected,) = ort.InferenceSession(model.SerializeToString()).run(None, feeds)
    got = vm["main"](*[tvm.runtime.tensor(a) for a in feeds.values()]).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert got[0] == pytest.approx(x[1] + x[2] + x[3])


def test_foreign_onnx_is_refused_with_a_clear_error(tmp_path):
    path = tmp_path / "foreign.onnx"
    onnx.save(_scatter_model(), path)
    with pytest.raises(ValueError, match="not an ONNX model exported by `dqc export-onnx`"):
        OnnxModel(path)
    with pytest.raises(ValueError, match="not an ONNX model exported by `dqc export-onnx`"):
        compile_checkpoint(path, tmp_path / "out")


def test_onnx_model_checks_its_inputs(exported, cora):
    model = OnnxModel(exported("gcn"))
    x, edge_index = cora.x.numpy(), cora.edge_index.numpy()
    with pytest.raises(ValueError, match="refers to node"):
        model.predict(x[:10], edge_index)
    with pytest.raises(ValueError, match="NaN"):
        model.predict(np.full_like(x, np.nan), edge_index)


def test_cli_export_then_eval(trained_cora, data_root, tmp_path):
    path = tmp_path / "gin.onnx"
    run = [sys.executable, "-m", "dqc"]
    subprocess.run([*run, "export-onnx", trained_cora("gin"), "-o", path], check=True)
    out = subprocess.run(
        [*run, "eval", path, "--reference", trained_cora("gin"), "--data-root", data_root],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "agreement" in out.stdout
    result = json.loads(
        subprocess.run(
            [*run, "eval", path, "--data-root", data_root, "--json"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()[-1]
    )
    assert result["metric"] == "accuracy" and result["agreement"] is None
