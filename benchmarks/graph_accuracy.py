"""Graph-level accuracy: REDDIT-BINARY (GIN, 10 folds) and ZINC (GCN/GAT/GIN) x 5 schemes.

Each run trains with the packaged defaults (``dqc/defaults.toml``) and reports the test metric
at its lowest-validation-loss epoch (REDDIT-BINARY: accuracy %, ZINC: MAE). The protocol takes
days on 2 cores, so it runs in pieces: finished runs are appended to
``results/runs/graph_accuracy.jsonl``, an unfinished run keeps its training state in
``results/runs/graph/*.resume.pt`` (not committed) and continues from its last epoch, and the
tables say how many runs each cell has.

Writes the graph-level rows of ``results/accuracy.json`` (same row format as the node rows,
``metric`` "accuracy" or "mae") and the graph-level section of ``results/accuracy.md``.

Each run's best-validation model is saved beside its resume file (``*.pt``, not committed)
for ``graph_parity.py``, which compiles it and checks the integer program against it.

``--set NAME=VALUE`` trains a candidate setting instead of the packaged one. Its run is kept
under its own settings and listed as a trial (with validation and test metric) next to the
cell's packaged run; a candidate is adopted into ``defaults.toml`` by hand, on validation
alone, and its run then counts for the cell without training again.

    python benchmarks/graph_accuracy.py --data-root ../shared/data                # everything
    python benchmarks/graph_accuracy.py --cells zinc/gcn --data-root DIR           # a part
    python benchmarks/graph_accuracy.py --cells zinc/gin --schemes dq-int8 --set weight_range=minmax
    python benchmarks/graph_accuracy.py --report-only
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from dqc.checkpoint import save_checkpoint
from dqc.graph_datasets import FOLDS, load_graph_dataset
from dqc.graph_training import train_graph_model
from dqc.hparams import TrainSettings, model_defaults, train_defaults
from dqc.models import ModelConfig

RESULTS = Path(__file__).parent / "results"
RUNS = RESULTS / "runs" / "graph_accuracy.jsonl"
SCHEMES = ("fp32", "qat-int8", "dq-int8", "qat-int4", "dq-int4")
CELLS = ("zinc/gcn", "zinc/gin", "zinc/gat", "reddit-binary/gin")
SECTION_START = "<!-- graph-level: benchmarks/graph_accuracy.py -->"
SECTION_END = "<!-- end graph-level -->"

# Published numbers (../shared/notes/degree-quant.md §5): FP32 / DQ-INT8 / DQ-INT4;
# None where unknown. REDDIT-BINARY: the paper (INT8/INT4 verified); ZINC: recollections.
PAPER = {
    "reddit-binary/gin": (92.2, 91.8, 81.3),
    "zinc/gcn": (0.469, 0.434, 0.536),
    "zinc/gat": (0.463, None, 0.52),
    "zinc/gin": (0.414, 0.431, None),
}


def settings(dataset: str, arch: str, scheme: str, changes: dict | None = None) -> dict:
    """Every setting of a run: the packaged defaults with ``changes`` applied."""
    return {
        **model_defaults(arch, dataset),
        **train_defaults(dataset, arch, scheme).record(graph_level=True),
        **(changes or {}),
    }


def run_key(dataset: str, arch: str, scheme: str, fold: int, changes: dict | None = None) -> str:
    return json.dumps(
        [dataset, arch, scheme, fold, settings(dataset, arch, scheme, changes)], sort_keys=True
    )


def checkpoint_path(dataset: str, arch: str, scheme: str, fold: int, changes: dict) -> Path:
    """Where a run's trained model is kept (its resume file sits beside it)."""
    tag = "".join(f"-{k}={v}" for k, v in sorted(changes.items()))
    return RESULTS / "runs" / "graph" / f"{dataset}-{arch}-{scheme}-fold{fold}{tag}.pt"


def parse_change(text: str) -> tuple[str, object]:
    """``NAME=VALUE`` from the command line; VALUE is a number where it parses as one."""
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


def load_runs() -> dict[str, dict]:
    if not RUNS.exists():
        return {}
    rows = [json.loads(line) for line in RUNS.read_text().splitlines() if line.strip()]
    return {row["key"]: row for row in rows}


def jobs(cells: list[str], schemes: list[str], folds: range) -> list[tuple]:
    """(dataset, arch, scheme, fold), one fold per scheme first so every cell fills early."""
    out = []
    for fold in folds:
        for cell in cells:
            dataset, arch = cell.split("/")
            if dataset != "reddit-binary" and fold > 0:
                continue  # ZINC has one fixed split; its runs differ by seed only
            out += [(dataset, arch, scheme, fold) for scheme in schemes]
    return out


def claim(lock: Path) -> bool:
    """Take ``lock`` for this sitting (it holds the owner's pid); False while another live
    sitting holds it. A lock left by a sitting that died is taken over."""
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        try:
            os.kill(int(lock.read_text() or 0), 0)
            return False  # its owner still runs
        except (ProcessLookupError, ValueError):
            lock.unlink(missing_ok=True)
            return claim(lock)
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    return True


def run(job: tuple, data_root: str | None, done: dict, changes: dict) -> bool:
    """Train ``job`` unless the run log has it or another sitting is training it; True if it
    trained."""
    dataset, arch, scheme, fold = job
    key = run_key(*job, changes)
    if key in done:
        return False
    resume = checkpoint_path(*job, changes).with_suffix(".resume.pt")
    resume.parent.mkdir(parents=True, exist_ok=True)
    lock = resume.with_suffix(".lock")
    if not claim(lock):
        print(f"{dataset} {arch} {scheme} fold {fold}: another sitting is training it", flush=True)
        return False
    try:
        return _train(job, data_root, done, changes, key, resume)
    finally:
        lock.unlink(missing_ok=True)


def _train(job: tuple, data_root, done: dict, changes: dict, key: str, resume: Path) -> bool:
    dataset, arch, scheme, fold = job
    print(f"{dataset} {arch} {scheme} fold {fold} {changes or ''}", flush=True)
    start = time.perf_counter()
    trained = train_graph_model(
        dataset,
        arch,
        scheme,
        seed=fold,
        data_root=data_root,
        fold=fold,
        resume_path=resume,
        **changes,
    )
    metric = "accuracy" if dataset == "reddit-binary" else "mae"
    m = trained.metrics
    save_checkpoint(
        checkpoint_path(*job, changes), trained.model, trained.config, dataset, trained.training, m
    )
    row = {
        "key": key,
        "dataset": dataset,
        "arch": arch,
        "scheme": scheme,
        "fold": fold,
        "changes": changes,
        "metric": metric,
        "test": m[f"test_{metric}"],
        "val": m[f"val_{metric}"],
        "best_epoch": m["best_epoch"],
        "epoch_seconds": m["epoch_seconds"],
        "seconds_this_sitting": time.perf_counter() - start,
    }
    with RUNS.open("a") as out:
        out.write(json.dumps(row) + "\n")
    done[key] = row
    resume.unlink()
    return True


def summarize(done: dict) -> list[dict]:
    rows = []
    for cell in CELLS:
        dataset, arch = cell.split("/")
        for scheme in SCHEMES:
            folds = range(FOLDS) if dataset == "reddit-binary" else range(1)
            values = [
                done[k]["test"]
                for k in (run_key(dataset, arch, scheme, f) for f in folds)
                if k in done
            ]
            if values:
                rows.append(
                    {
                        "dataset": dataset,
                        "arch": arch,
                        "scheme": scheme,
                        "metric": "accuracy" if dataset == "reddit-binary" else "mae",
                        "mean": round(statistics.mean(values), 4),
                        "std": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0,
                        "runs": len(values),
                    }
                )
    return rows


# Settings a run record leaves out when they have their default value.
OMITTED = {
    **{f.name: f.default for f in dataclasses.fields(ModelConfig)},
    **{f.name: f.default for f in dataclasses.fields(TrainSettings)},
}


def differences(row: dict) -> dict:
    """The settings of ``row``'s run that differ from the packaged ones, with its values."""
    ran = json.loads(row["key"])[4]
    packaged = settings(row["dataset"], row["arch"], row["scheme"])
    return {
        name: ran.get(name, OMITTED.get(name))
        for name in sorted(ran.keys() | packaged.keys())
        if ran.get(name, OMITTED.get(name)) != packaged.get(name, OMITTED.get(name))
    }


def trials(done: dict) -> list[dict]:
    """Runs whose settings are not the packaged ones: candidates (``--set``) not adopted, and
    runs of settings a candidate has since replaced."""
    return [row for row in done.values() if differences(row)]


def render_trials(done: dict) -> list[str]:
    rows = trials(done)
    if not rows:
        return []
    lines = [
        "",
        "Runs with settings other than the packaged ones (candidates tried with `--set`, and",
        "the runs of settings a candidate replaced), beside the packaged run of the same cell",
        "and fold. A candidate is adopted only if its validation metric is better. The training",
        "length (`epochs`) is part of a dataset's protocol: it changes for every cell of the",
        "dataset at once or not at all, so its trials are evidence, not candidates for one",
        "cell; likewise an architecture change (`batch_norm`, `norm_after_relu`) is adopted",
        "for every scheme of the (dataset, arch) row.",
        "",
        "| dataset | arch | scheme | fold | settings | val | test | packaged val | packaged test |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        job = (row["dataset"], row["arch"], row["scheme"], row["fold"])
        packaged = done.get(run_key(*job), {})
        change = ", ".join(f"{k}={v}" for k, v in differences(row).items())
        values = [row["val"], row["test"], packaged.get("val"), packaged.get("test")]
        digits = 1 if row["metric"] == "accuracy" else 3
        text = " | ".join("–" if v is None else f"{v:.{digits}f}" for v in values)
        lines.append(f"| {' | '.join(map(str, job))} | {change} | {text} |")
    return lines


def render_folds(done: dict) -> list[str]:
    """REDDIT-BINARY's test accuracy per fold and scheme: what the means above are made of,
    which folds are still to run (–), and each scheme's difference from FP32 on the same
    folds (folds differ far more from each other than the schemes do)."""
    lines = [
        "",
        "REDDIT-BINARY GIN, test accuracy (%) per fold (– not run yet), and the difference",
        "from FP32 fold by fold, mean ± std over the folds both ran:",
        "",
        "![REDDIT-BINARY test accuracy per fold and scheme](reddit_binary_folds.svg)",
        "",
        "| scheme | " + " | ".join(f"fold {f}" for f in range(FOLDS)) + " | − FP32, paired |",
        "|---|" + "---|" * (FOLDS + 1),
    ]

    def tests(scheme):
        return [
            done.get(run_key("reddit-binary", "gin", scheme, f), {}).get("test")
            for f in range(FOLDS)
        ]

    fp32 = tests("fp32")
    for scheme in SCHEMES:
        accuracy = tests(scheme)
        cells = " | ".join("–" if t is None else f"{t:.1f}" for t in accuracy)
        gaps = [
            a - b for a, b in zip(accuracy, fp32, strict=True) if a is not None and b is not None
        ]
        paired = "–"
        if scheme != "fp32" and len(gaps) > 1:
            paired = f"{statistics.mean(gaps):+.2f} ± {statistics.stdev(gaps):.2f} ({len(gaps)})"
        lines.append(f"| {scheme} | {cells} | {paired} |")
    return lines


def batch_norm_text(s: dict) -> str:
    """Where a run's GIN normalizes: nowhere, folded into the MLP, or after its ReLU."""
    if not s.get("batch_norm"):
        return "no"
    return "after ReLU" if s.get("norm_after_relu") else "folded"


def render(rows: list[dict], done: dict) -> str:
    cell = {(r["dataset"], r["arch"], r["scheme"]): r for r in rows}

    def fmt(dataset, arch, scheme):
        r = cell.get((dataset, arch, scheme))
        if r is None:
            return "–"
        # A fold's accuracy moves in steps of 0.5 (200 test graphs): a mean over 10 folds in
        # steps of 0.05, which one decimal would round (90.95 is not 91.0).
        digits = 2 if r["metric"] == "accuracy" else 3
        return f"{r['mean']:.{digits}f} ± {r['std']:.{digits}f} ({r['runs']})"

    lines = [
        SECTION_START,
        "## Graph-level tasks",
        "",
        "REDDIT-BINARY: test accuracy (%) at the lowest-validation-loss epoch, mean ± std over the",
        "folds that ran, of the authors' 10-fold protocol. ZINC (12k subset): test MAE (lower is",
        "better) at the lowest-validation-loss epoch, one run (seed 0). The number in parentheses",
        "is how many runs a cell has; the protocol asks for 10 folds on REDDIT-BINARY.",
        "Regenerate: `python benchmarks/graph_accuracy.py --data-root DIR` (resumes).",
        f"Machine: {platform.processor() or platform.machine()}, torch {torch.__version__}.",
        "",
        "| dataset | arch | FP32 | QAT-INT8 | DQ-INT8 | QAT-INT4 | DQ-INT4 | paper FP32 / DQ-INT8 / DQ-INT4 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in CELLS:
        dataset, arch = c.split("/")
        paper = " / ".join("?" if v is None else f"{v:g}" for v in PAPER[c])
        values = " | ".join(fmt(dataset, arch, s) for s in SCHEMES)
        lines.append(f"| {dataset} | {arch} | {values} | {paper} |")
    lines += render_folds(done)
    lines += [
        "",
        "| dataset | arch | scheme | layers | hidden | heads | batch norm | lr | weight decay | epochs | batch | lr schedule | p_min | p_max | weight range |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in CELLS:
        dataset, arch = c.split("/")
        for scheme in SCHEMES:
            s = settings(dataset, arch, scheme)
            schedule = (
                f"halve every {s['lr_halving_epochs']}"
                if s["lr_halving_epochs"]
                else f"halve on {s['plateau_patience']}-epoch plateau"
            )
            dq = scheme.startswith("dq")
            lines.append(
                f"| {dataset} | {arch} | {scheme} | {s['num_layers']} | {s['hidden_channels']} | "
                f"{s.get('heads', 1)} | {batch_norm_text(s)} | {s['lr']} | {s['weight_decay']} | {s['epochs']} | "
                f"{s['batch_size']} | {schedule} | {s['p_min'] if dq else '–'} | "
                f"{s['p_max'] if dq else '–'} | {s.get('weight_range', 'scheme')} |"
            )
    lines += [
        "",
        "Models: GCN/GAT/GIN layers with ReLU, mean pooling, a two-layer quantized readout with",
        "dropout (none in the convolutions). The GINs have a BatchNorm in each layer; the ZINC",
        "GCN and GAT have none. Without it the GIN's sums grow from layer to layer, its ranges",
        "with them, and every scheme, FP32 included, ends with a higher MAE (runs listed below).",
        "ZINC's is folded into the MLP's last linear (trained folded, so the integer program",
        "runs one linear). Folded, it scales the rows of a per-tensor weight grid, and at INT4",
        "most rows keep only a few of its 15 levels; REDDIT-BINARY's sits where the authors'",
        "GIN has it (`norm_after_relu`), after the MLP's last ReLU, as a per-channel scale and",
        "shift the integer program applies in the update's requantize (one multiplier per",
        "channel), with no ReLU between layers. It was adopted on validation accuracy (listed",
        "below); the folded runs it replaced stay listed as trials.",
        "ZINC uses one-hot atom types through the first layer (an atom-type embedding) and no",
        "bond features; 100 epochs instead of Benchmarking-GNNs' run-to-min-lr, to fit CPU time.",
        "Weight range: `scheme` tracks weights with the scheme's percentiles, as the authors do;",
        "`minmax` keeps every weight in range; a cell uses it only where a trial run with it had",
        "the better validation metric.",
        *render_trials(done),
        SECTION_END,
    ]
    return "\n".join(lines) + "\n"


def plot_folds(done: dict, path: Path) -> None:
    """``reddit_binary_folds.svg``: each scheme's test accuracy on every fold that ran (dots;
    a fold's dots joined across schemes, since folds differ more than schemes do), the mean
    (bar) and the paper's number where published (diamond)."""
    # imported here: notebooks/accuracy.ipynb imports this module as benchmarks.graph_accuracy,
    # where the sibling module is not on the path (and it draws its own figures)
    from figures import figure, save_svg

    fig, axes = figure(7, 4)
    accuracy = {
        scheme: [
            done.get(run_key("reddit-binary", "gin", scheme, fold), {}).get("test")
            for fold in range(FOLDS)
        ]
        for scheme in SCHEMES
    }
    for fold in range(FOLDS):
        axes.plot(
            range(len(SCHEMES)),
            [accuracy[scheme][fold] for scheme in SCHEMES],
            color="#bdbdbd",
            linewidth=0.6,
            marker="o",
            markersize=3,
            markerfacecolor="#616161",
            markeredgewidth=0,
        )
    for x, scheme in enumerate(SCHEMES):
        ran = [a for a in accuracy[scheme] if a is not None]
        if ran:
            mean = statistics.mean(ran)
            axes.hlines(mean, x - 0.25, x + 0.25, color="#1565c0", linewidth=2)
            axes.annotate(f"{mean:.1f} ({len(ran)})", (x + 0.27, mean), va="center", fontsize=7)
    paper = dict(zip(("fp32", "dq-int8", "dq-int4"), PAPER["reddit-binary/gin"], strict=True))
    published = [(SCHEMES.index(s), a) for s, a in paper.items() if a is not None]
    axes.scatter(*zip(*published, strict=True), marker="D", color="#c62828", zorder=3)
    axes.set_xticks(range(len(SCHEMES)), SCHEMES)
    axes.set_xlim(-0.5, len(SCHEMES) - 0.2)
    axes.set_ylabel("test accuracy (%)")
    axes.set_title(
        "REDDIT-BINARY GIN, 10-fold: folds (dots), mean over the folds run (bar, count), "
        "paper (red)",
        fontsize=8,
    )
    save_svg(fig, path)


def replace_text(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all (a sitting beside this one may be reading it)."""
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(text)
    os.replace(partial, path)


def write_results(done: dict) -> None:
    """Replace the graph-level rows of accuracy.json and the section of accuracy.md."""
    rows = summarize(done)
    json_path, md_path = RESULTS / "accuracy.json", RESULTS / "accuracy.md"
    graph_datasets = {c.split("/")[0] for c in CELLS}
    existing = json.loads(json_path.read_text()) if json_path.exists() else []
    kept = [r for r in existing if r.get("dataset") not in graph_datasets]
    replace_text(json_path, json.dumps(kept + rows, indent=1) + "\n")
    text = md_path.read_text() if md_path.exists() else ""
    if SECTION_START in text:
        before, rest = text.split(SECTION_START, 1)
        text = before + rest.split(SECTION_END, 1)[1].lstrip("\n")
    replace_text(md_path, text.rstrip("\n") + "\n\n" + render(rows, done))
    plot_folds(done, RESULTS / "reddit_binary_folds.svg")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cells", nargs="+", default=list(CELLS), choices=CELLS)
    parser.add_argument("--schemes", nargs="+", default=list(SCHEMES), choices=SCHEMES)
    parser.add_argument("--folds", type=int, default=FOLDS, help="REDDIT-BINARY folds 0..N-1")
    parser.add_argument(
        "--first-fold",
        type=int,
        default=0,
        help="start at this REDDIT-BINARY fold (sittings side by side: a run one of them is "
        "training is skipped by the others)",
    )
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--data-root", help="dataset root (PyG raw layout)")
    parser.add_argument(
        "--set",
        dest="changes",
        metavar="NAME=VALUE",
        type=parse_change,
        action="append",
        default=[],
        help="train a candidate setting instead of the packaged one (repeatable)",
    )
    parser.add_argument("--report-only", action="store_true", help="only rewrite the tables")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    # The run log is re-read before each run and each rewrite of the tables, so sittings
    # running side by side skip each other's finished runs and keep each other's rows.
    if not args.report_only:
        for dataset in {c.split("/")[0] for c in args.cells}:
            load_graph_dataset(dataset, args.data_root)  # process once up front
        for job in jobs(args.cells, args.schemes, range(args.first_fold, args.folds)):
            if run(job, args.data_root, load_runs(), dict(args.changes)):
                write_results(load_runs())
    write_results(load_runs())
    print(f"wrote {RESULTS / 'accuracy.md'}")


if __name__ == "__main__":
    main()
