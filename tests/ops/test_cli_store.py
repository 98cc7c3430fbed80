"""`searchlearn runs`, `show` and `eval` read an MLflow store a run left behind (built
here with the tracking calls the flow makes: no Prefect, no model), and fail with
one line and exit code 2 on a missing store, run or model."""

from __future__ import annotations

import pytest

from flows.cli import main
from searchlearn import tracking
from searchlearn.config import load_config


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("cli-store")
    cfg = load_config("tiny", [f"run_dir={run_dir}"])
    with tracking.parent_run(cfg, "tiny-past-run", tags={"searchlearn.command": "searchlearn run tiny"}) as handle:
        for r, greedy in enumerate((0.125, 0.25, 0.2)):
            row = {"round": r, "eval.greedy_acc": greedy, "eval.greedy_acc_se": 0.05, "eval.problems": 24,
                   "tokens.cumulative": 1000 * (r + 1), **({"search.solved": 0.5} if r else {})}
            tracking.log_round(handle, tracking.start_round_run(handle, r), r, row, {})
    return run_dir, handle


def test_runs_lists_past_runs_with_their_best_round(store, capsys):
    run_dir, handle = store
    assert main(["runs", "--experiment", "tiny", "--run-dir", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "tiny-past-run" in out and handle["run_id"][:8] in out and "0.250 (r1)" in out and "FINISHED" in out


def test_show_prints_one_runs_table_by_name_or_id_prefix(store, capsys):
    run_dir, handle = store
    for ref in ("tiny-past-run", handle["run_id"][:6]):
        assert main(["show", ref, "--experiment", "tiny", "--run-dir", str(run_dir)]) == 0
        out = capsys.readouterr().out
        assert "command: searchlearn run tiny" in out and "workflowType=machine_learning" in out
        lines = [line for line in out.splitlines() if line.strip().startswith("│")]
        assert [line.split("│")[2].strip() for line in lines] == ["0.125±0.050", "0.250±0.050", "0.200±0.050"]


@pytest.mark.parametrize("argv, message", [
    (["show", "no-such-run"], "no run named 'no-such-run'"),
    (["eval", "models:/searchlearn-policy@champion"], "model 'models:/searchlearn-policy@champion': "),
    (["eval", "0123456789abcdef"], "model '0123456789abcdef': "),
])
def test_a_missing_run_or_model_is_one_line_and_exit_code_2(store, capsys, argv, message):
    run_dir, _ = store
    assert main([*argv, "--experiment", "tiny", "--run-dir", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}") and err.count("\n") == 1


@pytest.mark.parametrize("argv", [["runs"], ["show", "x"], ["eval", "models:/p@champion"]])
def test_no_store_at_all_is_one_line_and_exit_code_2(tmp_path, capsys, argv):
    assert main([*argv, "--experiment", "tiny", "--run-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no MLflow store at" in err and err.count("\n") == 1
    assert not (tmp_path / "mlflow.db").exists()  # reading never creates a store


def test_overrides_may_follow_options_and_a_yaml_path_goes_to_experiment_file():
    from flows.cli import _experiment_params, _parse

    args = _parse(["eval", "models:/p@champion", "--split", "train", "eval.k=8", "--experiment", "tiny"])
    assert (args.model, args.split, args.overrides, args.experiment) == ("models:/p@champion", "train",
                                                                         ["eval.k=8"], "tiny")
    with pytest.raises(SystemExit):
        _parse(["runs", "stray"])
    assert _experiment_params("tiny") == {"experiment": "tiny"}
    assert _experiment_params("my/exp.yaml") == {"experiment_file": "my/exp.yaml"}


def test_the_run_forms_offer_the_shipped_variants():
    import typing

    from flows.params import ExperimentName, experiment_source
    from searchlearn.config import ConfigError, available_experiments

    assert list(typing.get_args(ExperimentName)) == available_experiments()
    assert experiment_source("tiny", None) == "tiny"
    assert experiment_source("tiny", "mine.yaml") == "mine.yaml"
    with pytest.raises(ConfigError, match="experiment_file must be a .yaml file"):
        experiment_source("tiny", "mine.txt")
