"""The README's two fresh-machine commands stay in it, and CI runs the test one as written."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAIN_JOB = "pip install torch==2.13.0 && pip install -e . && dqc demo"
TESTS = 'pip install torch==2.13.0 && pip install -e ".[test]" && python -m pytest'


def _bash_blocks(text: str) -> list[str]:
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", text, flags=re.S)]


def test_readme_has_the_main_job_and_the_test_command():
    blocks = _bash_blocks((ROOT / "README.md").read_text())
    assert MAIN_JOB in blocks
    assert TESTS in blocks


def test_ci_runs_the_readme_test_command():
    """CI's last command is the README's, with ``ruff check .`` before the tests."""
    ci = (ROOT / ".ci" / "run").read_text()
    last = [line for line in ci.splitlines() if line.strip() and not line.startswith("#")][-1]
    install, run_tests = TESTS.rsplit(" && ", 1)
    assert last == f"{install} && ruff check . && {run_tests}", last
