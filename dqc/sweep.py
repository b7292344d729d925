"""Run many training jobs in parallel, each cached as one JSON line so sweeps can resume.

A job is (dataset, arch, scheme, seed, overrides); its key includes the fully resolved
settings, so changing a default in ``defaults.toml`` makes old results stale instead of
silently reused. Workers run one torch thread each: on a 2-core machine two workers beat
one two-thread process, and oversubscribing cores stalls torch's thread pool.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from dqc.hparams import model_defaults, train_defaults


@dataclass(frozen=True)
class Job:
    dataset: str
    arch: str
    scheme: str
    seed: int
    overrides: dict = field(default_factory=dict, hash=False)

    def settings(self) -> dict:
        """Every setting the run will use: packaged defaults with the overrides applied."""
        merged = {
            **model_defaults(self.arch),
            **train_defaults(self.dataset, self.arch, self.scheme).record(graph_level=False),
        }
        return {**merged, **self.overrides}

    def key(self) -> str:
        cell = (self.dataset, self.arch, self.scheme, self.seed)
        return json.dumps([*cell, self.settings()], sort_keys=True)


def load_results(path: Path) -> dict[str, dict]:
    """Finished runs in ``path`` keyed by job key (missing file: none)."""
    results = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                results[row["key"]] = row
    return results


def _run(job_and_root: tuple[Job, str | None]) -> dict:
    import torch

    from dqc.training import train_model

    job, data_root = job_and_root
    torch.set_num_threads(1)
    start = time.perf_counter()
    trained = train_model(
        job.dataset, job.arch, job.scheme, job.seed, data_root, progress=False, **job.overrides
    )
    m = trained.metrics
    return {
        "key": job.key(),
        "dataset": job.dataset,
        "arch": job.arch,
        "scheme": job.scheme,
        "seed": job.seed,
        "settings": job.settings(),
        "test_acc": m["test_acc"],
        "val_acc": m["val_acc"],
        "val_loss": m["val_loss"],
        "best_epoch": m["best_epoch"],
        "train_step_seconds": m["train_step_seconds"],
        "seconds": time.perf_counter() - start,
    }


def run_jobs(
    jobs: Iterable[Job],
    results_file: str | os.PathLike,
    workers: int = 2,
    data_root: str | None = None,
) -> list[dict]:
    """Run the jobs not yet in ``results_file`` (appending each as it ends); return all rows."""
    path = Path(results_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    done = load_results(path)
    jobs = list(jobs)
    todo = [j for j in dict.fromkeys(jobs) if j.key() not in done]
    if todo:
        from dqc.datasets import load_node_dataset

        for dataset in {j.dataset for j in todo}:  # process each once, before workers race
            load_node_dataset(dataset, data_root)
        ctx = mp.get_context("spawn")
        with ctx.Pool(workers) as pool, path.open("a") as out:
            runs = pool.imap_unordered(_run, [(j, data_root) for j in todo])
            for row in tqdm(runs, total=len(todo), desc="runs", unit="run"):
                out.write(json.dumps(row) + "\n")
                out.flush()
                done[row["key"]] = row
    return [done[j.key()] for j in jobs]
