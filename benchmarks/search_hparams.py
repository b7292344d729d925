"""Search Degree-Quant's protection range (p_min, p_max) per dataset, architecture and scheme.

The paper gives no p_min / p_max for Cora or CiteSeer, so dqc picks them here: every
combination of p_min in {0, 0.1, 0.2} and p_max - p_min in {0.1, 0.2} (the grid suggested by
the authors' released REDDIT-BINARY values), two seeds each (seeds 100 and 101, disjoint from
the evaluation seeds 0-9), chosen by mean *validation* accuracy; test accuracy is never
looked at. Writes ``results/hparam_search.{json,md}``; the winners go into
``dqc/defaults.toml`` by hand. Resumable: finished runs are cached in
``results/runs/hparam_search.jsonl``.

    python benchmarks/search_hparams.py --data-root ../shared/data
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
from pathlib import Path

from dqc.sweep import Job, run_jobs

RESULTS = Path(__file__).parent / "results"
P_MIN = (0.0, 0.1, 0.2)
P_SPAN = (0.1, 0.2)
SEEDS = (100, 101)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--datasets", nargs="+", default=["cora", "citeseer"])
    parser.add_argument("--archs", nargs="+", default=["gcn", "gat", "gin"])
    parser.add_argument("--schemes", nargs="+", default=["dq-int8", "dq-int4"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--data-root")
    args = parser.parse_args()

    grid = [(lo, round(lo + span, 2)) for lo, span in itertools.product(P_MIN, P_SPAN)]
    cells = list(itertools.product(args.datasets, args.archs, args.schemes))
    jobs = [
        Job(d, a, s, seed, {"p_min": lo, "p_max": hi})
        for (d, a, s), (lo, hi), seed in itertools.product(cells, grid, SEEDS)
    ]
    rows = run_jobs(jobs, RESULTS / "runs" / "hparam_search.jsonl", args.workers, args.data_root)

    table = []
    for dataset, arch, scheme in cells:
        scores = []
        for lo, hi in grid:
            vals = [
                r["val_acc"]
                for r in rows
                if (r["dataset"], r["arch"], r["scheme"]) == (dataset, arch, scheme)
                and (r["settings"]["p_min"], r["settings"]["p_max"]) == (lo, hi)
            ]
            scores.append({"p_min": lo, "p_max": hi, "val_acc": statistics.mean(vals)})
        best = max(scores, key=lambda s: s["val_acc"])
        table.append(
            {"dataset": dataset, "arch": arch, "scheme": scheme, "best": best, "grid": scores}
        )
    (RESULTS / "hparam_search.json").write_text(json.dumps(table, indent=1) + "\n")
    write_markdown(table, grid)


def write_markdown(table: list[dict], grid: list[tuple[float, float]]) -> None:
    header = " | ".join(f"({lo}, {hi})" for lo, hi in grid)
    lines = [
        "# Degree-Quant protection range search",
        "",
        "Mean validation accuracy (%) over seeds "
        f"{', '.join(map(str, SEEDS))} for each (p_min, p_max); the best is in bold and is",
        "the default in `dqc/defaults.toml`. Other settings are the packaged defaults.",
        "Regenerate with `python benchmarks/search_hparams.py --data-root DIR`.",
        "",
        f"| dataset | arch | scheme | {header} |",
        "|---" * (3 + len(grid)) + "|",
    ]
    for row in table:
        cells = []
        for score in row["grid"]:
            text = f"{score['val_acc']:.1f}"
            cells.append(f"**{text}**" if score is row["best"] else text)
        lines.append(
            f"| {row['dataset']} | {row['arch']} | {row['scheme']} | " + " | ".join(cells) + " |"
        )
    (RESULTS / "hparam_search.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
