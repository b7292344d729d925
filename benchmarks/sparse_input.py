"""Where the sparse-input kernel pays: the same Cora GCN (DQ-INT8, trained here, seed 0)
compiled with ``--sparse-input on`` and ``off``, timed on inputs of Cora's shape (2,708 x
1,433, bag-of-words 0/1 values) at a range of nonzero shares, in one run. Both builds must
give the same logits bit for bit at every share. Writes ``results/sparse_input.json`` and
``results/sparse_input.md``; ``dqc.sparse_input.MAX_NONZERO_FRACTION`` (the ``auto``
threshold) sits below the measured crossover.

    python benchmarks/sparse_input.py --data-root ../shared/data
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from speed import cora_model
from tvm.target import codegen

import dqc
from dqc._tvm import aligned, tensor
from dqc.compiler import compile_checkpoint
from dqc.datasets import load_node_dataset
from dqc.sparse_input import MAX_NONZERO_FRACTION

from figures import figure, save_svg

RESULTS = Path(__file__).parent / "results"
FRACTIONS = (0.005, 0.01, 0.02, 0.03, 0.05, 0.08, 0.12, 0.2)


def bag_of_words(shape: tuple[int, int], fraction: float, seed: int) -> np.ndarray:
    """0/1 features with ``fraction`` of them 1, as Cora's."""
    rng = np.random.default_rng(seed)
    return aligned((rng.random(shape) < fraction).astype(np.float32))


def interleaved_ms(calls: dict, repeats: int) -> dict:
    """Median ms of each call, the calls taking turns (a busy spell of a shared machine then
    slows all of them alike), after one warm-up round."""
    times = {name: [] for name in calls}
    for round_ in range(repeats + 1):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            if round_:
                times[name].append(1e3 * (time.perf_counter() - start))
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-root", help="dataset root (PyG raw layout)")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--report-only", action="store_true", help="re-render the .json")
    args = parser.parse_args()
    saved = RESULTS / "sparse_input.json"
    if args.report_only:
        write_report(json.loads(saved.read_text()))
        return
    data = load_node_dataset("cora", args.data_root)
    cora_x = aligned(data.x.numpy())
    edge_index = data.edge_index.numpy()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = cora_model(Path(tmp), args.data_root)
        models = {}
        for mode in ("on", "off"):
            compile_checkpoint(checkpoint, Path(tmp) / mode, sparse_input=mode)
            models[mode] = dqc.load(Path(tmp) / mode)
        graph = models["on"].prepare(cora_x, edge_index)
        inputs = [("cora", float((cora_x != 0).mean()), cora_x)]
        inputs += [
            (f"{f:.1%}", f, bag_of_words(cora_x.shape, f, i)) for i, f in enumerate(FRACTIONS)
        ]
        for name, fraction, x in inputs:
            features = tensor(x)
            logits = {m: model.forward(features, graph) for m, model in models.items()}
            if not np.array_equal(logits["on"], logits["off"]):
                raise SystemExit(f"sparse and dense builds disagree on {name}")
            times = interleaved_ms(
                {
                    m: functools.partial(model.forward, features, graph)
                    for m, model in models.items()
                },
                args.repeats,
            )
            rows.append(
                {
                    "input": name,
                    "nonzero_fraction": round(fraction, 5),
                    "sparse_ms": round(times["on"], 3),
                    "dense_ms": round(times["off"], 3),
                    "speedup": round(times["off"] / times["on"], 2),
                }
            )
            print(rows[-1])
    machine = (
        f"{platform.machine()}, {os.cpu_count()} cores, LLVM CPU {codegen.llvm_get_system_cpu()}"
    )
    report = {"date": datetime.date.today().isoformat(), "machine": machine, "rows": rows}
    RESULTS.mkdir(exist_ok=True)
    saved.write_text(json.dumps(report, indent=1) + "\n")
    write_report(report)


def write_report(report: dict) -> None:
    (RESULTS / "sparse_input.md").write_text(render(report))
    plot(report, RESULTS / "sparse_input.svg")
    print(f"wrote {RESULTS / 'sparse_input.md'} and sparse_input.svg")


def plot(report: dict, path: Path) -> None:
    """``sparse_input.svg``: both builds' time against the input's nonzero share (the
    synthetic inputs as lines, Cora's own input as points), and the ``auto`` threshold."""
    fig, axes = figure(6, 3.6)
    synthetic = sorted(
        (r for r in report["rows"] if r["input"] != "cora"), key=lambda r: r["nonzero_fraction"]
    )
    shares = [100 * r["nonzero_fraction"] for r in synthetic]
    for key, label, color in (
        ("sparse_ms", "--sparse-input on", "#1565c0"),
        ("dense_ms", "--sparse-input off", "#9e9e9e"),
    ):
        axes.plot(shares, [r[key] for r in synthetic], marker="o", color=color, label=label)
        for r in report["rows"]:
            if r["input"] == "cora":
                axes.plot(
                    100 * r["nonzero_fraction"],
                    r[key],
                    marker="*",
                    markersize=11,
                    color=color,
                    linestyle="none",
                )
    axes.axvline(100 * MAX_NONZERO_FRACTION, color="black", linestyle=":", linewidth=1)
    axes.annotate(
        "auto: sparse up to here",
        (100 * MAX_NONZERO_FRACTION, axes.get_ylim()[1]),
        xytext=(4, -12),
        textcoords="offset points",
        fontsize=7,
    )
    axes.set_xlabel("nonzero input features (%); star: Cora's own input")
    axes.set_ylabel("forward (ms)")
    axes.set_title(f"Cora GCN DQ-INT8, {report['machine']}", fontsize=8)
    axes.legend(fontsize=7, loc="lower right")
    save_svg(fig, path)


def render(report: dict) -> str:
    lines = [
        "# Sparse input: the first matmul on nonzero features only",
        "",
        "Median ms of one `forward` (graph prepared once; the two builds taking turns) of the",
        "same Cora GCN (DQ-INT8) compiled with `--sparse-input on` and `off`, on inputs of",
        "Cora's shape (2,708 x 1,433 0/1 features) with the given share of ones; both builds",
        "gave identical logits on every input. `auto` uses the sparse kernel up to",
        f"{MAX_NONZERO_FRACTION:.0%} nonzero (INT8 and INT4 builds, AVX-512 targets).",
        "",
        f"Regenerate: `python benchmarks/sparse_input.py`. {report['machine']};",
        f"{report['date']}.",
        "",
        "![forward time against the nonzero share, both builds](sparse_input.svg)",
        "",
        "| input | nonzero | sparse (ms) | dense (ms) | dense / sparse |",
        "|---|---|---|---|---|",
    ]
    for r in report["rows"]:
        lines.append(
            f"| {r['input']} | {r['nonzero_fraction']:.2%} | {r['sparse_ms']:.2f} | "
            f"{r['dense_ms']:.2f} | {r['speedup']:.2f}x |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
