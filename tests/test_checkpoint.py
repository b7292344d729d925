"""Checkpoint round trip, and refusal of malformed or hostile files without running them."""

import subprocess
import sys
import zipfile

import pytest
import torch

from dqc.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from dqc.synthetic import synthetic_graph
from dqc.training import evaluate, train_model

GRAPH = synthetic_graph(num_nodes=300, num_features=16, seed=2)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    trained = train_model("synthetic", "gat", "dq-int4", data=GRAPH, epochs=3, progress=False)
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    save_checkpoint(
        path, trained.model, trained.config, "synthetic", trained.training, trained.metrics
    )
    return path, trained


def test_round_trip_restores_model_ranges_and_metadata(checkpoint):
    path, trained = checkpoint
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "dqc-checkpoint" and raw["version"] == 1
    assert "convs.0.quant.message.min_val" in raw["state_dict"]
    ckpt = load_checkpoint(path)
    assert ckpt.config == trained.config and ckpt.dataset == "synthetic"
    assert ckpt.training["seed"] == 0 and ckpt.metrics == trained.metrics
    assert evaluate(ckpt.model, GRAPH) == evaluate(trained.model, GRAPH)


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))  # would create the marker file if unpickled


def _zip_of_text(tmp_path) -> bytes:
    """A zip archive, as torch.save writes, holding no pickle at all."""
    archive = tmp_path / "notes.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("notes.txt", "hello")
    return archive.read_bytes()


def _hostile_files(tmp_path, good):
    data = good.read_bytes()
    payload = torch.load(good, weights_only=True)
    files = {
        "random bytes": bytes(range(256)) * 4,
        "empty": b"",
        "truncated": data[: len(data) // 2],
        "other zip": _zip_of_text(tmp_path),
    }
    for name, obj in {
        "code pickle": {"format": "dqc-checkpoint", "x": _RunsCode(tmp_path / "pwned")},
        "unknown version": {**payload, "version": 99},
        "no format": {"state_dict": payload["state_dict"]},
        "bad config": {**payload, "model": {**payload["model"], "hidden_channels": "8"}},
        "wrong shapes": {**payload, "model": {**payload["model"], "hidden_channels": 9}},
    }.items():
        target = tmp_path / "obj.pt"
        torch.save(obj, target)
        files[name] = target.read_bytes()
    return files


def test_hostile_and_malformed_files_are_refused(checkpoint, tmp_path):
    good, _ = checkpoint
    expected = {
        "random bytes": "not a checkpoint file",
        "empty": "not a checkpoint file",
        "truncated": "not a checkpoint file",
        "other zip": "not a readable checkpoint",
        "code pickle": "refused by the safe loader (Unsupported global: GLOBAL io.open",
        "unknown version": "unsupported checkpoint version 99",
        "no format": "not a dqc checkpoint",
        "bad config": "invalid model",
        "wrong shapes": "invalid model",
    }
    for name, content in _hostile_files(tmp_path, good).items():
        path = tmp_path / f"{name.replace(' ', '_')}.pt"
        path.write_bytes(content)
        with pytest.raises(CheckpointError) as err:
            load_checkpoint(path)
        assert str(err.value).startswith(f"{path}: ") and expected[name] in str(err.value)
        assert "\n" not in str(err.value)
    assert not (tmp_path / "pwned").exists()


def test_cli_reports_one_line_and_exit_status_2(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x80\x04not really a pickle")
    result = subprocess.run(
        [sys.executable, "-m", "dqc", "eval", str(bad), "--json"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0], result.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "dqc", "eval", str(tmp_path / "missing.pt")],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and "no such file" in missing.stderr
