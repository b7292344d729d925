"""``dqc tune`` and ``dqc compile --tuning-db``: a real meta_schedule search on a small
synthetic graph, resumed from its database, applied to a build that stays bit-exact."""

import json
import sys

import pytest

from dqc.cli import main

TRIALS = 4  # spread over the kernels: one candidate each


@pytest.fixture(scope="module")
def synthetic_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("tune") / "gcn.pt"
    argv = ["train", "--dataset", "synthetic", "--arch", "gcn", "--scheme", "dq-int8"]
    assert main([*argv, "--epochs", "5", "-q", "-o", str(path)]) == 0
    return path


def tune_json(capsys, model, db, trials: int) -> dict:
    argv = ["tune", str(model), "--workload", "synthetic", "--trials", str(trials)]
    assert main([*argv, "--db", str(db), "-q"]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def tuned_db(synthetic_model, tmp_path_factory):
    """A database after one tuning run, and that run's summary."""
    from dqc.tuning import tune

    db = tmp_path_factory.mktemp("tune") / "db"

    return db, tune(synthetic_model, db, "synthetic", TRIALS, progress=False)


@pytest.mark.slow
def test_tune_measures_every_searchable_kernel(tuned_db):
    _, first = tuned_db
    assert not first["resumed"]
    assert first["trials_run"] == first["trials_in_db"] > 0
    kernels = first["kernels"]
    assert any(name.startswith("dqc_spmm_csr") for name in kernels)  # the CSR aggregation
    assert all(k["trials"] >= 1 and k["best_ms"] > 0 for k in kernels.values())


@pytest.mark.slow
def test_tuning_leaves_no_stand_in_for_tvm_tensor_intrinsics(tuned_db):
    """Tuning contexts are made while an empty module stands in for TVM's tensor intrinsics
    (their import takes minutes); it must not outlive them, or a later real import would get
    the empty module."""
    module = sys.modules.get("tvm.s_tir.tensor_intrin")
    assert module is None or hasattr(module, "__file__")


@pytest.mark.slow
def test_second_tune_resumes(tuned_db, synthetic_model, capsys):
    db, first = tuned_db
    again = tune_json(capsys, synthetic_model, db, TRIALS)
    assert again["resumed"]
    assert again["trials_run"] == 0  # the budget is already in the database
    assert again["trials_in_db"] == first["trials_in_db"]
    assert again["kernels"].keys() == first["kernels"].keys()  # the same tasks every run


@pytest.mark.slow
def test_compile_with_tuning_db_is_bitexact(tuned_db, synthetic_model, tmp_path, capsys):
    db, first = tuned_db
    out = tmp_path / "out"
    assert main(["compile", str(synthetic_model), "-o", str(out), "--tuning-db", str(db)]) == 0
    log = capsys.readouterr().err
    assert "default schedules, no search space: dqc_graph_prep" in log
    report = json.loads((out / "dqc.json").read_text())["tuning"]
    assert any(name.startswith("dqc_spmm_csr") for name in report["tuned"])
    assert set(report["tuned"]) <= set(first["kernels"])
    assert main(["run", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["bitexact_with_reference"] is True
    assert result["agreement"] == 100.0


def test_compile_rejects_a_folder_that_is_no_database(synthetic_model, tmp_path, capsys):
    argv = ["compile", str(synthetic_model), "-o", str(tmp_path / "out")]
    assert main([*argv, "--tuning-db", str(tmp_path)]) == 2
    assert "not a dqc tuning database" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--trials", "0"], "at least 1"), (["--target", "arm64-dotprod"], "this machine")],
)
def test_tune_rejects_bad_requests(synthetic_model, tmp_path, capsys, extra, message):
    argv = ["tune", str(synthetic_model), "--workload", "synthetic", "--db", str(tmp_path)]
    assert main([*argv, *extra]) == 2
    assert message in capsys.readouterr().err


def test_tune_help_shows_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["tune", "--help"])
    text = capsys.readouterr().out
    assert "default: 64" in text and "reddit-shaped" in text
