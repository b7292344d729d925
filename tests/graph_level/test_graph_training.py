"""Graph-level training: metrics of the lowest-validation-loss epoch, and resuming."""

import pytest
import torch

from dqc.graph_training import train_graph_model


def test_training_reports_the_selected_epoch(zinc):
    trained = train_graph_model("zinc", "gcn", "dq-int4", splits=zinc, epochs=2, progress=False)
    m = trained.metrics
    assert m["epochs_run"] == 2 and m["best_epoch"] in (0, 1)
    assert 0 < m["test_mae"] < 3 and m["val_loss"] == pytest.approx(m["val_mae"], rel=1e-5)
    assert trained.config.task == "graph" and trained.config.num_layers == 4


def test_a_finished_run_resumes_instead_of_training_again(zinc, tmp_path):
    resume = tmp_path / "run.resume"
    kwargs = {"splits": zinc, "epochs": 2, "progress": False, "resume_path": resume}
    first = train_graph_model("zinc", "gin", "dq-int8", **kwargs)
    assert resume.is_file()
    torch.manual_seed(123)  # would change a fresh run; a resumed one restores its RNG state
    second = train_graph_model("zinc", "gin", "dq-int8", **kwargs)
    assert second.metrics["epochs_run"] == 2
    assert second.metrics["test_mae"] == first.metrics["test_mae"]
    for a, b in zip(
        first.model.state_dict().values(), second.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="other settings"):
        train_graph_model("zinc", "gin", "dq-int8", **{**kwargs, "epochs": 3})
