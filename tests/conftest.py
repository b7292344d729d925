"""Shared fixtures: an isolated dqc cache and a private copy of the staged datasets."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Keep PyG's processed files and dqc's cache out of the home directory."""
    old = os.environ.get("DQC_CACHE_DIR")
    os.environ["DQC_CACHE_DIR"] = str(tmp_path_factory.mktemp("dqc-cache"))
    yield
    if old is None:
        os.environ.pop("DQC_CACHE_DIR", None)
    else:
        os.environ["DQC_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def data_root(tmp_path_factory) -> Path:
    """A temp copy of ``../shared/data/Planetoid`` (or ``$DQC_TEST_DATA``), so nothing is
    ever written into the shared folder."""
    source = Path(os.environ.get("DQC_TEST_DATA") or SHARED_DATA)
    if not (source / "Planetoid").is_dir():
        message = f"datasets not found under {source} (set DQC_TEST_DATA)"
        if os.environ.get("DQC_REQUIRE_DATA"):
            pytest.fail(message)
        pytest.skip(message)
    root = tmp_path_factory.mktemp("data")
    shutil.copytree(source / "Planetoid", root / "Planetoid")
    return root
