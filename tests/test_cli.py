"""The dqc command line on real data: train, eval, demo, help and error paths."""

import json
import subprocess
import sys

import pytest


def dqc(*args, check=True):
    result = subprocess.run(
        [sys.executable, "-m", "dqc", *map(str, args)], capture_output=True, text=True
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_help_shows_defaults():
    out = dqc("train", "--help").stdout
    assert "(default: cora)" in out and "(default: dq-int8)" in out
    assert "from dqc/defaults.toml" in out
    assert "eval" in dqc("--help").stdout


def test_every_command_has_help(capsys):
    """Each subcommand's ``--help`` renders (argparse formats help strings with ``%``)."""
    import argparse

    from dqc.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert {"train", "compile", "run", "bench"} <= set(commands.choices)
    for name in commands.choices:
        with pytest.raises(SystemExit) as exited:
            parser.parse_args([name, "--help"])
        assert exited.value.code == 0
        assert name in capsys.readouterr().out
    assert "(default: auto)" in " ".join(commands.choices["compile"].format_help().split())


def test_train_then_eval_json(tmp_path, data_root):
    model = tmp_path / "m.pt"
    out = dqc(
        "train",
        "--dataset",
        "citeseer",
        "--arch",
        "gin",
        "--scheme",
        "qat-int4",
        "--epochs",
        "3",
        "--data-root",
        data_root,
        "-o",
        model,
        "-q",
    ).stdout
    assert "test accuracy" in out and model.exists()
    result = json.loads(dqc("eval", model, "--data-root", data_root, "--json").stdout)
    assert set(result) == {"dataset", "arch", "scheme", "metric", "value"}
    assert (result["dataset"], result["arch"], result["scheme"]) == ("citeseer", "gin", "qat-int4")
    assert result["metric"] == "accuracy" and 0 <= result["value"] <= 100


def test_bad_inputs_exit_2_with_a_message(tmp_path):
    result = dqc(
        "train",
        "--epochs",
        "0",
        "--dataset",
        "synthetic",
        "-q",
        "-o",
        tmp_path / "x.pt",
        check=False,
    )
    assert result.returncode == 2 and "epochs must be at least 1" in result.stderr
    bad_choice = dqc("train", "--scheme", "int3", check=False)
    assert bad_choice.returncode == 2 and "invalid choice" in bad_choice.stderr
    node_level = dqc("train", "--dataset", "synthetic", "--norm-after-relu", check=False)
    assert node_level.returncode == 2 and "graph-level datasets, not synthetic" in node_level.stderr


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path):
    out = dqc("demo", "-o", tmp_path, "--epochs", "20", "-q").stdout
    assert "dq-int8" in out and (tmp_path / "model.pt").exists()
    assert (tmp_path / "compiled" / "model.so").exists()
    assert "bit-exact with the integer reference: True" in out
