"""``dqc bench`` on a batch of real graphs: the same columns as node workloads."""

import json

from dqc.cli import main


def _bench(args: list[str], capsys) -> tuple[int, str, str]:
    status = main(["bench", *args, "--repeats", "2", "--no-torch-compile", "-q"])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_zinc_batch_with_its_default_model(data_root, capsys):
    status, out, _ = _bench(
        ["--workload", "zinc-batch", "--data-root", str(data_root), "--json"], capsys
    )
    assert status == 0
    result = json.loads(out)
    assert (result["graphs"], result["nodes"], result["arch"]) == (1000, 23117, "gcn")
    for column in (
        "pyg_fp32_ms",
        "pyg_fp32_prepared_ms",
        "dqc_fp32_ms",
        "dqc_int8_ms",
        "dqc_int4_ms",
        "input_read_ms",
    ):
        assert result[column] > 0, column
    expected = round(result["pyg_fp32_ms"] / result["dqc_int8_ms"], 2)
    assert abs(result["speedup_vs_pyg"] - expected) <= 0.011
    assert result["speedup_vs_fp32"] > 0
    assert "ort_skipped" in result


def test_node_model_on_a_graph_workload_is_refused(trained_cora, data_root, capsys):
    model = str(trained_cora("gcn"))
    args = [model, "--workload", "zinc-batch", "--data-root", str(data_root)]
    status, _, err = _bench(args, capsys)
    assert status == 2
    assert "node-level model; the zinc-batch workload times graph-level models" in err
