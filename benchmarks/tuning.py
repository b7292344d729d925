"""Tuned against default schedules on the Reddit-shaped graph, in one run.

Tunes the calibrated DQ-INT8 GCN of ``dqc bench --workload reddit-shaped`` with ``dqc tune``
(``--trials`` measured candidates in all), compiles it twice (default schedules, and with
``--tuning-db``), and times both builds the way ``dqc bench`` does: median wall time of a
full call (graph preparation included) and of a call on a prepared graph, and each kernel's
median time inside the prepared call. Writes ``results/tuning.json`` (one row end to end,
one per kernel) and ``results/tuning.md``.

    python benchmarks/tuning.py --trials 128
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import tempfile
from functools import partial
from pathlib import Path

from dqc.bench import median_ms, reddit_shaped_model
from dqc.compiler import compile_checkpoint
from dqc.runtime import load
from dqc.targets import host_target
from dqc.tuning import tune
from dqc.workloads import reddit_shaped

RESULTS = Path(__file__).parent / "results"
WORKLOAD = "reddit-shaped"


def time_builds(directories: dict[str, Path], x, edge_index, repeats: int) -> dict:
    """Per build: full and prepared medians (ms) and each kernel's median ms in the prepared
    call. The builds take turns call by call, so a slow stretch of the machine hits both."""
    models = {name: load(directory) for name, directory in directories.items()}
    x, edge_index = next(iter(models.values())).check(x, edge_index)
    graphs = {name: model.prepare(x, edge_index) for name, model in models.items()}
    samples = {name: {"full": [], "prepared": [], "kernels": []} for name in models}
    for _ in range(repeats):
        for name, model in models.items():
            graph = graphs[name]
            full, prepared = partial(model.predict, x, edge_index), partial(model.forward, x, graph)
            samples[name]["full"].append(median_ms(full, 1))
            samples[name]["prepared"].append(median_ms(prepared, 1))
            samples[name]["kernels"].append(model.kernel_ms(x, graph))
    return {
        name: {
            "full": statistics.median(s["full"]),
            "prepared": statistics.median(s["prepared"]),
            "kernels": {k: statistics.median(c[k] for c in s["kernels"]) for k in s["kernels"][0]},
        }
        for name, s in samples.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=128, help="tuning budget")
    parser.add_argument("--repeats", type=int, default=10, help="timed calls per build")
    parser.add_argument("--db", help="tuning database (default: a temporary folder)")
    args = parser.parse_args()

    checkpoint = reddit_shaped_model()
    x, edge_index, _ = reddit_shaped()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(args.db or Path(tmp) / "db")
        tuned = tune(checkpoint, db, WORKLOAD, args.trials, log=print)
        compile_checkpoint(checkpoint, Path(tmp) / "default")
        compile_checkpoint(checkpoint, Path(tmp) / "tuned", tuning_db=db)
        manifest = json.loads((Path(tmp) / "tuned" / "dqc.json").read_text())
        builds = {name: Path(tmp) / name for name in ("default", "tuned")}
        times = time_builds(builds, x, edge_index, args.repeats)
        default, best = times["default"], times["tuned"]

    common = {"trials": tuned["trials_in_db"], "tuning_seconds": tuned["tuning_seconds"]}
    rows = [
        {
            "workload": WORKLOAD,
            **common,
            "default_ms": round(default["full"], 2),
            "tuned_ms": round(best["full"], 2),
            "speedup": round(default["full"] / best["full"], 3),
            "default_prepared_ms": round(default["prepared"], 2),
            "tuned_prepared_ms": round(best["prepared"], 2),
            "prepared_speedup": round(default["prepared"] / best["prepared"], 3),
        }
    ]
    for kernel, ms in sorted(default["kernels"].items(), key=lambda kv: -kv[1]):
        if kernel.startswith("vm.builtin") or ms < 0.05 or kernel not in best["kernels"]:
            continue
        state = "tuned" if kernel in manifest["tuning"]["tuned"] else "default"
        rows.append(
            {
                "workload": f"{WORKLOAD}/{kernel}",
                **common,
                "default_ms": round(ms, 3),
                "tuned_ms": round(best["kernels"][kernel], 3),
                "speedup": round(ms / best["kernels"][kernel], 3),
                "schedule": state,
                "trials_of_kernel": tuned["kernels"].get(kernel, {}).get("trials", 0),
            }
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "tuning.json").write_text(json.dumps(rows, indent=1) + "\n")
    (RESULTS / "tuning.md").write_text(markdown(rows, manifest["tuning"], tuned))
    print(json.dumps(rows[0]))


def markdown(rows: list[dict], applied: dict, tuned: dict) -> str:
    end = rows[0]
    lines = [
        "# Tuned against default schedules (meta_schedule, dqc's search spaces)",
        "",
        f"Reddit-shaped graph (50,000 nodes, 5,000,000 edges), calibrated DQ-INT8 GCN; "
        f"{end['trials']} trials in {end['tuning_seconds']:.0f} s of tuning on this machine "
        f"({json.dumps(host_target())}), {datetime.date.today()}. Both builds timed in the "
        "same run, taking turns call by call, medians. Regenerate: `python benchmarks/tuning.py`.",
        "",
        "| | default | tuned | speed-up |",
        "|---|---|---|---|",
        f"| end to end (graph preparation included) | {end['default_ms']} ms | "
        f"{end['tuned_ms']} ms | **{end['speedup']:.2f}×** |",
        f"| graph prepared | {end['default_prepared_ms']} ms | {end['tuned_prepared_ms']} ms "
        f"| {end['prepared_speedup']:.2f}× |",
        "",
        "## Per kernel (inside the prepared call)",
        "",
        "| kernel | schedule | trials | default ms | tuned ms | speed-up |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows[1:]:
        name = row["workload"].split("/", 1)[1]
        lines.append(
            f"| `{name[:60]}` | {row['schedule']} | {row['trials_of_kernel']} | "
            f"{row['default_ms']} | {row['tuned_ms']} | {row['speedup']:.2f}× |"
        )
    fallback = ", ".join(f"`{k}`" for k in applied["no_search_space"]) or "none"
    lines += [
        "",
        f"Kernels without a search space (hand-written loop nests, default schedule): "
        f"{fallback}. Tuning time includes lowering, one default build and run to record "
        f"the kernels' shapes and index arrays ({tuned['tuning_seconds']:.0f} s in all).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
