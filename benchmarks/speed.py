"""Speed of dqc's INT8 and INT4 binaries against PyG FP32, ONNX Runtime (FP32 and QDQ INT8)
and dqc's own FP32 build, in one run.

Runs ``dqc bench`` on Cora (a DQ-INT8 GCN trained here with the packaged defaults, seed 0),
on the Reddit-shaped graph (50,000 nodes, 5,000,000 edges; a calibrated DQ-INT8 GCN) and on
the graph-level batches ``zinc-batch`` (1,000 molecules; calibrated DQ-INT8 GCN, ZINC shape)
and ``reddit-binary-batch`` (128 graphs; calibrated DQ-INT8 GIN, 5 layers), then writes
``results/speed.json`` and ``results/speed.md``. The INT4 column is the INT8 model's
precision twin (same weights and ranges at 4 bits, for timing only). Run it on a quiet
machine: every column shares the CPU with nothing else, and the ratios compare columns of
the same run. ``--workloads`` reruns some rows and keeps the others.

    python benchmarks/speed.py --data-root ../shared/data
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import tempfile
from pathlib import Path

import torch
import tvm
from tvm.target import codegen

from dqc.bench import MIN_TIMED_SECONDS, run_bench
from dqc.checkpoint import save_checkpoint
from dqc.kernels.spmm_csr import PREFETCH_EDGES
from dqc.kernels.spmm_lookup import (
    NIBBLE_LANES,
    PERMUTE_ONE,
    TABLE_LOOKUP,
    lookup_supported,
    nibble_shuffle,
)
from dqc.training import train_model

from figures import figure, save_svg

RESULTS = Path(__file__).parent / "results"
# The figure's bars: each system's full call, as a speed-up over PyG FP32 eager.
PLOTTED = [
    ("pyg_compile_ms", "PyG torch.compile", "#9e9e9e"),
    ("ort_fp32_ms", "ONNX Runtime FP32", "#c7b299"),
    ("ort_int8_ms", "ONNX Runtime QDQ INT8", "#a1887f"),
    ("dqc_fp32_ms", "dqc FP32", "#90caf9"),
    ("dqc_int8_ms", "dqc INT8", "#1565c0"),
    ("dqc_int4_ms", "dqc INT4", "#2e7d32"),
]
COLUMNS = [
    ("pyg_fp32_ms", "PyG FP32 eager"),
    ("pyg_compile_ms", "PyG FP32 torch.compile"),
    ("ort_fp32_ms", "ONNX Runtime FP32"),
    ("ort_int8_ms", "ONNX Runtime QDQ INT8"),
    ("dqc_fp32_ms", "dqc FP32"),
    ("dqc_int8_ms", "dqc INT8"),
    ("dqc_int4_ms", "dqc INT4"),
    ("pyg_fp32_prepared_ms", "PyG FP32, graph prepared"),
    ("ort_fp32_prepared_ms", "ONNX Runtime FP32, graph prepared"),
    ("ort_int8_prepared_ms", "ONNX Runtime QDQ INT8, graph prepared"),
    ("dqc_fp32_prepared_ms", "dqc FP32, graph prepared"),
    ("dqc_int8_prepared_ms", "dqc INT8, graph prepared"),
    ("dqc_int4_prepared_ms", "dqc INT4, graph prepared"),
    ("dqc_fp32_aggregation_ms", "dqc FP32: aggregation kernels"),
    ("dqc_int8_aggregation_ms", "dqc INT8: aggregation kernels"),
    ("dqc_int4_aggregation_ms", "dqc INT4: aggregation kernels"),
    ("input_read_ms", "one pass over the input features (torch.sum)"),
]
RATIOS = [
    ("speedup_vs_pyg", "INT8 vs PyG eager"),
    ("speedup_vs_ort_int8", "INT8 vs ONNX Runtime QDQ INT8"),
    ("speedup_vs_fp32", "INT8 vs dqc FP32"),
    ("speedup_prepared_vs_pyg_prepared", "INT8 vs PyG, graphs prepared"),
    ("int4_speedup_vs_int8", "INT4 vs INT8"),
    ("int4_aggregation_speedup_vs_int8", "INT4 vs INT8, aggregation kernels"),
]
# Bytes per inference: parameters in the binary, and the node features the aggregation
# gathers (N x F codes per layer: what each edge reads, at 4, 1 or 0.5 bytes per value).
BYTES = [
    ("dqc_fp32_weight_bytes", "parameter bytes, FP32"),
    ("dqc_int8_weight_bytes", "parameter bytes, INT8"),
    ("dqc_int4_weight_bytes", "parameter bytes, INT4"),
    ("gathered_fp32_bytes", "gathered feature table bytes, FP32"),
    ("gathered_int8_bytes", "gathered feature table bytes, INT8"),
    ("gathered_int4_bytes", "gathered feature table bytes, INT4"),
]


SPEED_WORKLOADS = ("cora", "reddit-shaped", "zinc-batch", "reddit-binary-batch")
MODELS = {
    "cora": "GCN dq-int8 trained here (seed 0)",
    "reddit-shaped": "GCN dq-int8, 602 -> 128 -> 41, ranges calibrated by one forward",
    "zinc-batch": "GCN dq-int8, 4 x 146 + mean-pool readout, ranges calibrated by one forward",
    "reddit-binary-batch": "GIN dq-int8, 5 x 64 + mean-pool readout, ranges calibrated by one "
    "forward",
}


def cora_model(directory: Path, data_root) -> Path:
    print("train a DQ-INT8 GCN on Cora (seed 0)")
    trained = train_model("cora", "gcn", "dq-int8", seed=0, data_root=data_root)
    model = directory / "cora-gcn-dq-int8.pt"
    save_checkpoint(model, trained.model, trained.config, "cora", trained.training, {})
    return model


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-root", help="dataset root (PyG raw layout)")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument(
        "--workloads",
        nargs="+",
        choices=SPEED_WORKLOADS,
        default=SPEED_WORKLOADS,
        help="workloads to (re)run; the committed rows of the others are kept",
    )
    parser.add_argument("--report-only", action="store_true", help="re-render speed.json")
    args = parser.parse_args()
    saved = RESULTS / "speed.json"
    rows = {r["workload"]: r for r in json.loads(saved.read_text())} if saved.exists() else {}
    if not args.report_only:
        with tempfile.TemporaryDirectory() as tmp:
            for workload in args.workloads:
                path = cora_model(Path(tmp), args.data_root) if workload == "cora" else None
                print(f"bench {workload}")
                row = run_bench(
                    workload, path, args.repeats, args.data_root, log=lambda s: print(" ", s)
                )
                today = datetime.date.today().isoformat()
                rows[workload] = {**row, **_gathered_bytes(row), "date": today}
    ordered = [rows[w] for w in SPEED_WORKLOADS if w in rows]
    RESULTS.mkdir(exist_ok=True)
    saved.write_text(json.dumps(ordered, indent=1) + "\n")
    (RESULTS / "speed.md").write_text(render(ordered))
    plot(ordered, RESULTS / "speed.svg")
    print(f"wrote {RESULTS / 'speed.md'}")


def _gathered_bytes(row: dict) -> dict:
    """Bytes of the node-feature tables a 2-layer GCN's aggregations gather from (hidden
    width 64 on Cora, 128 on the Reddit shape; then the classes); node workloads only."""
    if row["graphs"] is not None:
        return {}
    hidden = 64 if row["workload"] == "cora" else 128
    classes = {"cora": 7}.get(row["workload"], 41)
    values = row["nodes"] * (hidden + classes)
    return {
        "gathered_fp32_bytes": 4 * values,
        "gathered_int8_bytes": values,
        "gathered_int4_bytes": row["nodes"] * (-(-hidden // 2) + -(-classes // 2)),
    }


def _ms(value) -> str:
    if value is None:
        return "–"
    return f"{value:,.1f}" if value >= 0.1 else f"{value:.3f}"  # sub-0.1 ms reads stay visible


def _ratio(value) -> str:
    return "–" if value is None else f"**{value:.2f}×**"


def _count(value) -> str:
    return "–" if value is None else f"{value:,}"


def _header(row: dict) -> str:
    graphs = f"{row['graphs']:,} graphs, " if row.get("graphs") else ""
    return f"{row['workload']} ({graphs}{row['nodes']:,} nodes, {row['edges']:,} edges)"


def _message_work(spec: dict) -> str:
    """How the INT8 message loop computes GCN's messages on ``spec``'s CPU (read off the
    disassembly of the Reddit-shaped INT8 build)."""
    target = tvm.target.Target(spec)
    arithmetic = (
        "Every message value is requantized on its own, as Degree-Quant's message quantizer "
        "defines it (sign-extend, subtract the zero point, multiply by the edge's fixed-point "
        "weight, pick the rounding offset by the parity bit, add, shift, accumulate; the clamp "
        "only on edges whose weight can reach it): "
    )
    if lookup_supported(target):
        return (
            "Each message is a function of two bytes (the edge's norm code, the source's "
            "feature code), so the INT8 kernel reads it from a 256 x 256 table built at "
            "compile time (`dqc.kernels.spmm_lookup`): per 64 values two `vpermi2b`, a "
            "blend, and two 16-bit additions and a shift (the words' and the high bytes' "
            "sums, from which the low bytes' follow), where the arithmetic it replaces took "
            "seven instructions per 16 values and FP32 needs one FMA."
        )
    if codegen.llvm_cpu_has_features(["avx512f"], target):
        return (
            arithmetic + "seven AVX-512 instructions per sixteen values, where FP32 needs one FMA."
        )
    return arithmetic + "eight AVX2 instructions per eight values, where FP32 needs one FMA."


def _int4_message_work(spec: dict) -> str:
    """How the INT4 message loop computes GCN's messages on ``spec``'s CPU."""
    nibbles = nibble_shuffle(tvm.target.Target(spec))
    if nibbles is None:
        return (
            "INT4 computes its messages and adds the nibble decode (shifts on every value, "
            "two output vectors per byte vector read); it saves memory traffic, not "
            "instructions."
        )
    instruction = {PERMUTE_ONE: "`vpermb`", TABLE_LOOKUP: "`tbl`"}.get(nibbles, "`vpshufb`")
    lanes = NIBBLE_LANES[nibbles]
    return (
        "INT4 looks its messages up too: a source code is a nibble, so the edge's table row "
        f"has 16 entries, stored four times in 64 bytes, and one {instruction} reads {lanes} "
        "low nibbles' entries, another the high nibbles' after a 16-bit shift: two "
        f"instructions per {2 * lanes} values read from {lanes} bytes, half INT8's bytes."
    )


def analysis(rows: list[dict]) -> str:
    """What bounds the aggregation, from the Reddit-shaped row's numbers."""
    r = next(r for r in rows if r["workload"] == "reddit-shaped")
    values = (r["edges"] + r["nodes"]) * (128 + 41)  # messages (self-loops too) x features
    rate = values / (r["dqc_int8_aggregation_ms"] * 1e-3) / 2 / 1e9  # per core
    return f"""\
## What bounds INT4 (and INT8) aggregation

On the Reddit-shaped graph the aggregation kernels (with their epilogues: the requantize,
bias and ReLU applied to each row's sums as they are stored) take
{r["dqc_fp32_aggregation_ms"]:.1f} ms in FP32, {r["dqc_int8_aggregation_ms"]:.1f} ms in INT8 and
{r["dqc_int4_aggregation_ms"]:.1f} ms in INT4, while each edge reads 4, 1 and 0.5 bytes per feature from tables of
{r["gathered_fp32_bytes"] / 1e6:.1f}, {r["gathered_int8_bytes"] / 1e6:.1f} and
{r["gathered_int4_bytes"] / 1e6:.1f} MB. Source rows are scattered over the table, so every
kernel asks for each edge's row {PREFETCH_EDGES} edges before it uses it (software prefetch):
the loads overlap with the arithmetic instead of stalling each edge.
{_message_work(r["dqc_target"])} The INT8 kernel runs {values / 1e6:,.0f} M message values at {rate:.1f} G
values/s per core. {_int4_message_work(r["dqc_target"])} INT4's aggregation runs at
{r["int4_aggregation_speedup_vs_int8"]:.2f}x INT8's speed here. INT4 holds its parameters in
{r["dqc_int4_weight_bytes"]:,} bytes against INT8's {r["dqc_int8_weight_bytes"]:,} (on CPUs
that look messages up, INT8's include a 64 KB table per GCN layer, INT4's a 16 KB one) and
halves the gathered table."""


def cora_floor(rows: list[dict]) -> str:
    """How close the Cora row is to what reading its input costs."""
    r = next((r for r in rows if r["workload"] == "cora" and r.get("input_read_ms")), None)
    if r is None:
        return ""
    read, int8, pyg = r["input_read_ms"], r["dqc_int8_ms"], r["pyg_fp32_ms"]
    nodes, nonzero = r["nodes"], r.get("input_nonzero_fraction")
    if r.get("dqc_int8_sparse_input"):
        first_layer = (
            f"the first layer, which reads x once and multiplies only its nonzero values "
            f"({nonzero:.1%}: {nonzero * nodes * 1433 * 64 / 1e6:.1f} M multiply-adds instead "
            f"of {nodes * 1433 * 64 / 1e6:.0f} M; `--sparse-input`, "
            "`benchmarks/results/sparse_input.md`)"
        )
    else:
        first_layer = (
            "quantizing x (writing 3.9 MB of codes) and the int8 dense layer over it "
            f"({nodes * 1433 * 64 / 1e6:.0f} M multiply-adds)"
        )
    prep = int8 - r["dqc_int8_prepared_ms"]
    preparation = (
        f"{prep:.2f} ms: the full call less the prepared one"
        if prep > 0
        else "within the timing noise: the prepared call was no faster"
    )
    return f"""## What bounds Cora

Cora's input is {nodes:,} nodes x 1,433 bag-of-words features in float32 (15.5 MB) and
the model is small (1,433 -> 64 -> 7), so the input dominates. One pass over it (`torch.sum`,
{r["torch_threads"]} threads) takes {read:.2f} ms, {100 * read / int8:.0f} % of dqc INT8's
{int8:.2f} ms; the rest is {first_layer}, graph preparation
({preparation}) and the two aggregations ({r["dqc_int8_aggregation_ms"]:.2f} ms). Ten times PyG eager's {pyg:.2f} ms would be
{pyg / 10:.2f} ms, the time of {pyg / 10 / read:.1f} passes over the input before any
arithmetic."""


def plot(rows: list[dict], path: Path) -> None:
    """``speed.svg``: per workload, every system's speed-up over PyG FP32 eager (log scale,
    so 2x reads the same everywhere); the table in ``speed.md`` has the milliseconds."""
    height = 0.8 / len(PLOTTED)
    fig, axes = figure(8, 1.2 + 1.1 * len(rows))
    for rank, (key, label, color) in enumerate(PLOTTED):
        placed = [
            (i, r["pyg_fp32_ms"] / r[key]) for i, r in enumerate(rows) if r.get(key) is not None
        ]
        positions = [i + (rank - (len(PLOTTED) - 1) / 2) * height for i, _ in placed]
        speedups = [speedup for _, speedup in placed]
        # bars grow from 1x (PyG's own time): rightwards when faster, leftwards when slower
        widths = [speedup - 1 for speedup in speedups]
        axes.barh(positions, widths, height, left=1, label=label, color=color)
        for y, speedup in zip(positions, speedups, strict=True):
            beyond, align = (speedup * 1.04, "left") if speedup >= 1 else (speedup / 1.04, "right")
            axes.text(beyond, y, f"{speedup:.1f}x", va="center", ha=align, fontsize=7)
    axes.axvline(1.0, color="black", linewidth=0.8)
    slowest = min(r["pyg_fp32_ms"] / r[key] for r in rows for key, *_ in PLOTTED if r.get(key))
    axes.set_xlim(left=min(slowest, 1.0) / 1.5)  # room for the labels of bars below 1x
    axes.set_xscale("log")
    axes.set_yticks(range(len(rows)), [r["workload"] for r in rows])
    axes.invert_yaxis()
    axes.set_xlabel("speed-up over PyG FP32 eager (full call, log scale)")
    axes.legend(fontsize=7, loc="lower right")
    axes.set_title(f"{rows[0]['machine']}, {rows[0]['torch_threads']} threads", fontsize=9)
    save_svg(fig, path)


def render(rows: list[dict]) -> str:
    lines = [
        "# Speed: dqc INT8 and INT4 against PyG FP32, ONNX Runtime and dqc FP32",
        "",
        "Median wall time (ms) of one inference from `(x, edge_index)` to logits, graph",
        "normalization and CSR construction included; the *prepared* rows time the same",
        "models with the graph prepared once beforehand (PyG: self-loops and normalization",
        "cached; dqc: CSR built by `prepare`). All columns of a workload ran in the same",
        "process, taking turns a call at a time (a slow spell of the machine slows them",
        f"alike), after a warm-up round, over at least {rows[0]['repeats']} rounds and until",
        f"{MIN_TIMED_SECONDS} s per column was spent. ONNX Runtime runs the same models exported by",
        "`dqc export-onnx` (QDQ for INT8; graph preparation in NumPy is part of its full call).",
        "Regenerate: `python benchmarks/speed.py`.",
        "",
        "![speed-up over PyG FP32 eager](speed.svg)",
        "",
        f"Machine: {rows[0]['machine']} ({platform.system()}), "
        f"LLVM target {json.dumps(rows[0]['dqc_target'])}; torch {torch.__version__} "
        f"({rows[0]['torch_threads']} threads), TVM {tvm.__version__}; "
        f"{max(r.get('date', '') for r in rows) or 'date not recorded'}.",
        "",
        "| | " + " | ".join(_header(r) for r in rows) + " |",
        "|---" * (1 + len(rows)) + "|",
    ]
    for key, label in COLUMNS:
        lines.append(f"| {label} | " + " | ".join(_ms(r.get(key)) for r in rows) + " |")
    for key, label in RATIOS:
        lines.append(f"| **{label}** | " + " | ".join(_ratio(r.get(key)) for r in rows) + " |")
    for key, label in BYTES:
        lines.append(f"| {label} | " + " | ".join(_count(r.get(key)) for r in rows) + " |")
    lines += [
        "",
        "Models: "
        + "; ".join(f"{r['workload']}: {MODELS[r['workload']]}" for r in rows)
        + ". INT4: the INT8 model's precision twin (same weights and ranges at 4 bits). "
        "Graph-level batches have no ONNX Runtime columns: dqc's ONNX export covers "
        "node-level models only.",
        "",
        analysis(rows),
    ]
    if cora_floor(rows):
        lines += ["", cora_floor(rows)]
    errors = [
        f"{r['workload']}: {r['pyg_compile_error']}" for r in rows if r.get("pyg_compile_error")
    ]
    if errors:
        lines += ["", "torch.compile failed: " + "; ".join(errors)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
