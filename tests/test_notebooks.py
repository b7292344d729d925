"""Every notebook in ``notebooks/`` runs top to bottom and draws its plots, and is committed
without outputs, so its diffs show code and prose only."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def code_cells(path: Path) -> list[dict]:
    return [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_runs_and_plots(notebook, tmp_path):
    env = {
        **os.environ,
        # ipykernel's inline backend renders with Agg, needs no display, and turns figures into
        # image/png outputs; a plain MPLBACKEND=Agg would leave the notebook without plots.
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        # This environment's python3 kernelspec (ipykernel's), not one in the user's home.
        "JUPYTER_PREFER_ENV_PATH": "1",
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "nbconvert",
            "--to",
            "notebook",
            "--execute",
            "--ExecutePreprocessor.kernel_name=python3",
            "--ExecutePreprocessor.timeout=600",
            "--output-dir",
            str(tmp_path),
            str(notebook),
        ],
        cwd=notebook.parent,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    outputs = [o for cell in code_cells(tmp_path / notebook.name) for o in cell["outputs"]]
    assert any("image/png" in o.get("data", {}) for o in outputs), f"{notebook.name}: no plot"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_is_stripped(notebook):
    dirty = [i for i, c in enumerate(code_cells(notebook)) if c["outputs"] or c["execution_count"]]
    assert not dirty, (
        f"{notebook.name}: code cells {dirty} keep outputs; "
        "run `jupyter nbconvert --clear-output --inplace notebooks/*.ipynb`"
    )
