"""Compiled graph-level models against their fake-quant twins and the integer reference.

For every quantized run of ``graph_accuracy.py`` whose trained model is kept
(``results/runs/graph/*.pt``; packaged settings or a trial's), compile it for this machine
and evaluate it on its test split as ``dqc run --json`` does: the integer program's metric next to the fake-quant
PyTorch model's, and whether its outputs equal the NumPy integer reference bit for bit.
Tolerances (issue 4): 0.5 accuracy points, 0.005 MAE.

Writes ``results/graph_parity.{json,md}``; a model whose file has not changed since its last
check is not compiled again, and the rows of runs whose model is no longer on disk (models
are not committed) stay as they were.

    python benchmarks/graph_parity.py --data-root ../shared/data
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
from pathlib import Path

from graph_accuracy import OMITTED, RESULTS, checkpoint_path, differences, load_runs, settings
from tqdm.auto import tqdm

from dqc.checkpoint import load_checkpoint
from dqc.compiler import compile_checkpoint, file_sha256
from dqc.evaluation import evaluate_artifact

TOLERANCE = {"accuracy": 0.5, "mae": 0.005}
OUTPUT = RESULTS / "graph_parity.json"


def kept_models(runs: dict[str, dict]) -> list[tuple[dict, Path]]:
    """(run row, model file) of the quantized runs whose model is on disk (an adopted
    candidate's model keeps the file name it was trained under)."""
    out = []
    for row in runs.values():
        job = (row["dataset"], row["arch"], row["scheme"], row["fold"])
        path = checkpoint_path(*job, row.get("changes") or {})
        if row["scheme"] != "fp32" and path.exists() and trained_as_run(path, row):
            out.append((row, path))
    return out


def trained_as_run(path: Path, row: dict) -> bool:
    """Whether the model in ``path`` was trained with ``row``'s settings. Files are named by
    how a run's settings differ from the packaged ones, so once a candidate is adopted, the
    new packaged runs take the file names of the runs made under the old defaults."""
    ckpt = load_checkpoint(path)
    recorded = {**ckpt.training, **dataclasses.asdict(ckpt.config)}
    ran = json.loads(row["key"])[4]
    names = ran.keys() | settings(row["dataset"], row["arch"], row["scheme"]).keys()
    ran = {name: ran.get(name, OMITTED.get(name)) for name in names}  # older keys omit some
    return all(recorded[name] == value for name, value in ran.items() if name in recorded)


def settings_text(run: dict) -> str:
    """A run's settings against today's packaged ones: ``packaged`` or what differs."""
    return ", ".join(f"{k}={v}" for k, v in differences(run).items()) or "packaged"


def check(row: dict, path: Path, data_root: str | None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        compile_checkpoint(path, Path(tmp) / "out")
        result = evaluate_artifact(Path(tmp) / "out", row["dataset"], data_root)
    gap = abs(result["value"] - result["fakequant_value"])
    return {
        **{k: row[k] for k in ("key", "dataset", "arch", "scheme", "fold")},
        "sha256": file_sha256(path),
        **{k: result[k] for k in ("metric", "value", "fakequant_value", "graphs", "target")},
        "agreement": result.get("agreement"),
        "bitexact_with_reference": result["bitexact_with_reference"],
        "gap": round(gap, 6),
        "within_tolerance": gap <= TOLERANCE[result["metric"]],
    }


def render(rows: list[dict], runs: dict[str, dict]) -> str:
    lines = [
        "# Compiled graph-level models: parity with fake-quant and the integer reference",
        "",
        "Each trained model of `graph_accuracy.py` compiled for this machine and run on its",
        "test split in one batch, as `dqc run --json` does; *settings* says whether the run",
        "has the packaged settings or a trial's. Tolerance: 0.5 accuracy points or 0.005 MAE",
        "between the integer program and the fake-quant model.",
        "Regenerate: `python benchmarks/graph_parity.py --data-root DIR`.",
        "",
        "| dataset | arch | scheme | fold | settings | graphs | metric | compiled | fake-quant | "
        "gap | agreement % | bit-exact | within tolerance |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        agreement = "–" if r["agreement"] is None else f"{r['agreement']:.1f}"
        lines.append(
            f"| {r['dataset']} | {r['arch']} | {r['scheme']} | {r['fold']} | "
            f"{settings_text(runs[r['key']])} | {r['graphs']} | "
            f"{r['metric']} | {r['value']:g} | {r['fakequant_value']:g} | {r['gap']:g} | "
            f"{agreement} | {r['bitexact_with_reference']} | {r['within_tolerance']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-root", help="dataset root (PyG raw layout)")
    args = parser.parse_args()

    previous = json.loads(OUTPUT.read_text()) if OUTPUT.exists() else []
    done = {r["sha256"]: r for r in previous}
    runs = load_runs()
    rows = []
    for row, path in tqdm(kept_models(runs), desc="models", unit="model"):
        sha = file_sha256(path)
        rows.append(done[sha] if sha in done else check(row, path, args.data_root))
    checked = {r["key"] for r in rows}
    rows += [r for r in previous if r["key"] not in checked and r["key"] in runs]
    rows.sort(key=lambda r: (r["dataset"], r["arch"], r["scheme"], r["fold"], r["key"]))
    OUTPUT.write_text(json.dumps(rows, indent=1) + "\n")
    (RESULTS / "graph_parity.md").write_text(render(rows, runs))
    print(f"wrote {RESULTS / 'graph_parity.md'}")


if __name__ == "__main__":
    main()
