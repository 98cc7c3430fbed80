"""Past runs, read back from an MLflow store: what `searchlearn runs` and
`searchlearn show` print. A run's per-round history is rebuilt from its parent
run's step metrics (step = round), so a failed or half-finished run shows too."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from pathlib import Path

from searchlearn.tracking import mlflow_client

PARENT = "tags.`mlflow.parentRunId` IS NULL"


class NoSuchRun(LookupError):
    pass


def store_missing(uri: str) -> str | None:
    """Why a store cannot be read, or None. A SQLite URI must name an existing file:
    opening a missing one would create an empty store."""
    if uri.startswith("sqlite:///"):
        path = Path(uri[len("sqlite:///"):])
        if not path.is_file():
            return f"no MLflow store at {path} (run an experiment first, or pass --run-dir)"
    return None


def _experiment(client, name: str):
    exp = client.get_experiment_by_name(name)
    if exp is None:
        raise NoSuchRun(f"the MLflow store has no experiment {name!r}")
    return exp


def list_runs(uri: str, experiment_name: str, limit: int = 50) -> list[dict]:
    """The newest top-level runs (loops, evaluations, data generation), one summary row each."""
    client = mlflow_client(uri)
    exp = _experiment(client, experiment_name)
    runs = client.search_runs([exp.experiment_id], PARENT, max_results=limit,
                              order_by=["attributes.start_time DESC"])
    return [_summary(client, run) for run in runs]


def _summary(client, run) -> dict:
    greedy = client.get_metric_history(run.info.run_id, "eval.greedy_acc")
    best = max(greedy, key=lambda m: (m.value, m.step), default=None)
    tags = run.data.tags
    return {
        "started": _time(run.info.start_time), "name": run.info.run_name, "run_id": run.info.run_id,
        "status": run.info.status, "flow": tags.get("searchlearn.flow", "search-and-learn"),
        "experiment": tags.get("searchlearn.experiment", "?"),
        "rounds": len({m.step for m in greedy}),
        "best_greedy": None if best is None else best.value, "best_round": None if best is None else best.step,
        "minutes": _minutes(run.info.start_time, run.info.end_time),
    }


def find_run(uri: str, experiment_name: str, ref: str):
    """A top-level run by id, unique id prefix or run name (the newest of that name)."""
    client = mlflow_client(uri)
    exp = _experiment(client, experiment_name)
    runs = client.search_runs([exp.experiment_id], PARENT, max_results=5000,
                              order_by=["attributes.start_time DESC"])
    named = [r for r in runs if r.info.run_name == ref]
    by_id = [r for r in runs if r.info.run_id.startswith(ref)]
    if named:
        return named[0]
    if len(by_id) == 1:
        return by_id[0]
    if by_id:
        raise NoSuchRun(f"run id prefix {ref!r} matches {len(by_id)} runs; give more characters")
    raise NoSuchRun(f"no run named {ref!r} or with an id starting {ref!r} in experiment {experiment_name!r}")


def run_history(uri: str, run) -> list[dict]:
    """The run's rows by round, as the flow's history: {"round": r, metric: value, ...}."""
    client = mlflow_client(uri)
    rows: dict[int, dict] = defaultdict(dict)
    for key in run.data.metrics:
        for m in client.get_metric_history(run.info.run_id, key):
            rows[m.step][key] = m.value
    return [{**rows[step], "round": step} for step in sorted(rows)]


def _time(ms: int | None) -> str:
    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M") if ms else "-"


def _minutes(start: int | None, end: int | None) -> float | None:
    return round((end - start) / 60000, 1) if start and end else None
