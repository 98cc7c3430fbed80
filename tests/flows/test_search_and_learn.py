"""The whole recipe on the `tiny` variant: real Prefect server, real MLflow store,
real (tiny) training. One first run is shared by the tests in this module."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowkit import assert_learned, mlflow_client, run_flow, task_states

pytestmark = pytest.mark.slow

STAGES = {"prepare-problems", "init-base-model", "sft-on-demos", "prepare-eval-problems", "evaluate-policy",
          "evaluate-handwritten", "search-shard", "search-for-data", "learn-policy"}


@pytest.fixture(scope="module")
def first_run(prefect_server, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("tiny-run")
    state = run_flow("tiny", run_dir)
    assert state.is_completed(), state
    return run_dir, state


def test_first_run_executes_every_stage(first_run):
    run_dir, state = first_run
    states = task_states(state)
    assert set(states) == STAGES
    assert all(s == "Completed" for names in states.values() for s in names), states
    history = state.result()
    assert [row["round"] for row in history] == [0, 1, 2]
    for row in history:
        assert 0.0 <= row["eval.greedy_acc"] <= 1.0
        assert row["eval.tokens"] > 0
        # The hand-written set is scored every round, whole, with its interval.
        assert row["eval.handwritten.problems"] == 66 and "eval.handwritten.greedy_acc_se" in row
    assert_learned(run_dir, history, 2)
    assert history[1]["search.tokens"] > 0
    assert history[2]["tokens.cumulative"] > history[1]["tokens.cumulative"] > history[0]["tokens.cumulative"]


def test_mlflow_records_parent_rounds_datasets_plots_and_model(first_run):
    run_dir, _ = first_run
    client = mlflow_client(run_dir)
    exp = client.get_experiment_by_name("searchlearn")
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert parent.data.params["search.n"] == "8"
    assert parent.data.params["policy.source"] == "tiny"
    assert "eval.greedy_acc" in parent.data.metrics
    top = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"config", "plots", "summary.json"} <= top
    plots = {a.path for a in client.list_artifacts(parent.info.run_id, "plots")}
    assert plots == {"plots/accuracy_per_round.png", "plots/accuracy_vs_compute.png"}
    import mlflow

    models = mlflow.search_logged_models(experiment_ids=[exp.experiment_id], output_format="list")
    assert any(m.source_run_id == parent.info.run_id for m in models)

    children = sorted((r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id),
                      key=lambda r: int(r.data.params["round"]))
    assert [r.data.params["round"] for r in children] == ["0", "1", "2"]
    for child in children:
        assert "eval.greedy_acc" in child.data.metrics
        assert Path(child.data.tags["ref.policy"]).is_dir()
    for child in children[1:]:
        assert "search.tokens" in child.data.metrics
        assert child.inputs.dataset_inputs, "search data should be logged as an MLflow dataset input"
        files = {a.path for a in client.list_artifacts(child.info.run_id, "search")}
        assert files == {"search/results.jsonl", "search/problems.json"}  # raw rows and the per-problem table


def test_second_run_is_fully_cached(first_run):
    run_dir, first = first_run
    second = run_flow("tiny", run_dir)
    assert second.is_completed()
    states = task_states(second)
    assert set(states) == STAGES
    assert all(s == "Cached" for names in states.values() for s in names), states
    # Same stage outputs; only the flow's own wall-clock column may differ.
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(second.result()) == strip(first.result())


def test_changing_a_learning_setting_reuses_init_and_first_search(first_run):
    run_dir, _ = first_run
    state = run_flow("tiny", run_dir, "learn.rft.train.learning_rate=0.002")
    assert state.is_completed()
    states = task_states(state)
    for name in ("prepare-problems", "init-base-model", "sft-on-demos"):
        assert states[name] == ["Cached"], (name, states)
    # search round 1 uses the init policy: cached; round 2 uses the new policy: rerun.
    assert sorted(states["search-for-data"]) == ["Cached", "Completed"]
    assert states["learn-policy"] == ["Completed", "Completed"]
