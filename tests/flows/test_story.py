"""What a user finds after one `tiny` run, read back from the MLflow store (MlflowClient)
and the Prefect API: the champion with its own round's scores, every per-round metric
as a curve on the parent run, readable tables, round runs that last as long as their
rounds, and the links between the two UIs. One run (tests/conftest.py) serves all."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from flowkit import mlflow_client

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def story(finished_tiny_run):
    run_dir, state, history = finished_tiny_run
    client = mlflow_client(run_dir)
    exp = client.get_experiment_by_name("searchlearn")
    runs = client.search_runs([exp.experiment_id])
    [parent] = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    rounds = {int(r.data.tags["searchlearn.round"]): r for r in runs
              if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    return SimpleNamespace(run_dir=run_dir, state=state, client=client, exp=exp, parent=parent, rounds=rounds,
                           history=history, **_prefect_records(state.state_details.flow_run_id))


def _prefect_records(flow_run_id) -> dict:
    """The flow run's task runs and artifacts, as the Prefect UI lists them."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    return {"tasks": tasks, "artifacts": artifacts}


def _numbers(row: dict) -> dict:
    return {k: v for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _table(client, run_id: str, path: str) -> dict:
    with open(client.download_artifacts(run_id, path)) as f:
        return json.load(f)


def test_the_champion_carries_its_own_rounds_metrics_and_says_why_it_won(story):
    import mlflow

    from searchlearn.champion import best_round

    best = best_round(story.history)
    version = story.client.get_model_version_by_alias("searchlearn-policy", "champion")
    model = mlflow.get_logged_model(version.source.removeprefix("models:/"))
    linked = {m.key: m for m in model.metrics}
    assert {m.step for m in model.metrics} == {best}
    expected = _numbers(story.history[best])
    assert set(expected) <= set(linked)
    for key, value in expected.items():
        assert linked[key].value == pytest.approx(value), key
    assert model.tags["searchlearn.round"] == version.tags["searchlearn.round"] == str(best)
    assert model.tags["searchlearn.parent_run_id"] == story.parent.info.run_id
    assert "±" in model.tags["searchlearn.greedy_acc"] and "±" in version.tags["searchlearn.maj_at_2"]
    assert version.tags["searchlearn.learn_algorithm"] in ("rft", "none (round 0: SFT init)")
    assert f"Round {best}" in model.tags["mlflow.note.content"]
    assert "best held-out greedy accuracy" in version.description


def test_every_per_round_metric_is_a_curve_on_the_parent_run(story):
    keys = set().union(*(_numbers(row) for row in story.history))
    assert {k.split(".")[0] for k in keys} >= {"eval", "search", "learn", "tokens"}
    assert "eval.handwritten.greedy_acc" in keys
    for key in keys:
        steps = [m.step for m in story.client.get_metric_history(story.parent.info.run_id, key)]
        assert sorted(steps) == [row["round"] for row in story.history if key in row], key


def test_the_summary_table_has_no_dotted_columns_and_no_empty_accuracy_cells(story):
    table = _table(story.client, story.parent.info.run_id, "summary.json")
    assert not [c for c in table["columns"] if "." in c]
    greedy = table["columns"].index("eval_greedy_acc")
    # (log_table keeps 10 significant digits)
    assert [row[greedy] for row in table["data"]] == pytest.approx([row["eval.greedy_acc"] for row in story.history])


def test_each_round_has_a_table_of_its_problems_and_a_dataset_of_the_right_size(story):
    for r, run in story.rounds.items():
        row = story.history[r]
        held_out = _table(story.client, run.info.run_id, "eval/problems.json")
        assert len(held_out["data"]) == row["eval.problems"] == 24
        assert held_out["columns"][:2] == ["question", "reference"]
        handwritten = _table(story.client, run.info.run_id, "eval.handwritten/problems.json")
        assert len(handwritten["data"]) == row["eval.handwritten.problems"]
        assert f"Round {r}" in run.data.tags["mlflow.note.content"]
    for r in (1, 2):
        run, row = story.rounds[r], story.history[r]
        searched = _table(story.client, run.info.run_id, "search/problems.json")
        assert len(searched["data"]) == row["search.problems"] == 16
        k_of_n = searched["columns"].index("k_of_n_correct")
        assert all(cell.endswith("/8") for cell in (d[k_of_n] for d in searched["data"]))
        [dataset] = run.inputs.dataset_inputs
        assert json.loads(dataset.dataset.profile)["num_rows"] == 16  # problems, not 16 x 8 candidates


def test_round_runs_last_at_least_as_long_as_their_stages(story):
    for r, run in story.rounds.items():
        stage_seconds = sum(t.total_run_time.total_seconds() for t in story.tasks if t.name.endswith(f"-r{r}"))
        assert stage_seconds > 0
        assert (run.info.end_time - run.info.start_time) / 1000 >= stage_seconds, r


def test_prefect_and_mlflow_link_to_each_other(story):
    [summary] = [a for a in story.artifacts if a.key == "tiny-summary"]
    assert summary.type == "markdown"
    assert story.parent.info.run_id in summary.data and "workflowType=machine_learning" in summary.data
    assert "| round | greedy |" in summary.data and "Champion" in summary.data
    tags = story.parent.data.tags
    assert tags["prefect.flow_run_id"] == str(story.state.state_details.flow_run_id)
    assert tags["searchlearn.command"] == f"searchlearn run tiny run_dir={story.run_dir}"
    assert tags["searchlearn.overrides"] == f"run_dir={story.run_dir}"
    # Task runs carry their round; stages outside the rounds keep Prefect's own suffix.
    names = {t.name for t in story.tasks}
    assert {"search-for-data-r1", "learn-policy-r2", "evaluate-policy-r0", "evaluate-handwritten-r2"} <= names
    assert any(n.startswith("sft-on-demos-") for n in names)


def test_the_parent_run_logs_only_the_sections_that_ran_and_a_report(story):
    params = story.parent.data.params
    assert params["learn.algorithm"] == "rft" and "learn.rft.train.learning_rate" in params
    assert not [k for k in params if k.startswith(("learn.grpo.", "learn.dpo.", "search.mcts.", "search.dvts."))]
    assert [k for k in params if k.startswith("prm.")] == ["prm.enabled"]
    files = {a.path for a in story.client.list_artifacts(story.parent.info.run_id)}
    assert {"config", "plots", "summary.json", "report.md"} <= files
    description = story.parent.data.tags["mlflow.note.content"]
    assert "#### Champion" in description and "get-artifact?path=plots%2Faccuracy_per_round.png" in description
