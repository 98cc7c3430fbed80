"""Helpers for flow tests: run the flow as the CLI does, read task states and MLflow."""

from __future__ import annotations

from pathlib import Path


def run_flow(experiment: str, run_dir: Path, *overrides: str):
    """Run search_and_learn as the CLI does (results cached under run_dir); return its final state."""
    from flows.search_and_learn import search_and_learn

    flow = search_and_learn.with_options(result_storage=Path(run_dir) / "prefect-results")
    return flow(experiment=experiment, overrides=[f"run_dir={run_dir}", *overrides], return_state=True)


def task_states(state) -> dict[str, list[str]]:
    """Task-run name prefix -> state names, for the flow run behind `state`."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id]))
        )
    out: dict[str, list[str]] = {}
    for run in runs:
        out.setdefault(run.name.rsplit("-", 1)[0], []).append(run.state.name)
    return out


def mlflow_client(run_dir: Path):
    import mlflow

    uri = f"sqlite:///{Path(run_dir).resolve() / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    return mlflow.MlflowClient(uri)


def assert_learned(run_dir: Path, history: list[dict], rounds: int, loss_falls: bool = True) -> None:
    """Learning happened in every round: its policy's weights differ from the previous
    round's, and its training loss fell (a fitting loss: SFT/RFT, DPO; GRPO's policy
    loss is no such curve). At learning rate 0, or with a warm-up over the only step,
    both fail."""
    from searchlearn.artifacts import sha256_file

    def weights(name: str) -> str:
        [path] = (Path(run_dir) / "artifacts" / name).glob("*/model/model.safetensors")
        return sha256_file(path)

    shas = [weights("policy-init")] + [weights(f"policy-r{r}") for r in range(1, rounds + 1)]
    assert len(set(shas)) == len(shas), "a round left the policy's weights unchanged"
    for row in history[1:]:
        assert row["learn.train.steps"] >= 2, row
        assert not loss_falls or row["learn.train.last_loss"] < row["learn.train.first_loss"], row


def run_twice(run_dir, experiment: str, *overrides: str) -> tuple[list[dict], dict]:
    """The first run's history and task states, after checking a second run is fully Cached."""
    first = run_flow(experiment, run_dir, *overrides)
    assert first.is_completed(), first
    states = task_states(first)
    assert all(s == "Completed" for names in states.values() for s in names), states
    second = run_flow(experiment, run_dir, *overrides)
    assert second.is_completed()
    assert all(s == "Cached" for names in task_states(second).values() for s in names), task_states(second)
    return first.result(), states
