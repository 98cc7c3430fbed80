"""MLflow tracking for a search-and-learn run: one parent run per flow run, one
nested child run per round. Uses MlflowClient with explicit run ids because the
fluent API's active run does not follow work into other threads (Prefect task
runners), and logs from returned values because cached stages skip their bodies."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from searchlearn.config.load import flatten, to_yaml

PLOT_DIR = "plots"


def tracking_uri(cfg) -> str:
    """Always an absolute SQLite URI (a relative one lands wherever cwd happens to be)."""
    if cfg.tracking.uri:
        return cfg.tracking.uri
    return f"sqlite:///{(Path(cfg.run_dir).resolve() / 'mlflow.db')}"


def _client(uri: str):
    import mlflow

    mlflow.set_tracking_uri(uri)
    return mlflow.MlflowClient(tracking_uri=uri)


def experiment_id(client, name: str, artifact_root: Path) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    return client.create_experiment(name, artifact_location=artifact_root.resolve().as_uri())


RUN_DIR_TAG = "searchlearn.run_dir"


@contextmanager
def parent_run(cfg, run_name: str, tags: dict | None = None) -> Iterator[dict]:
    """The flow run's parent run, ended FINISHED when the block completes and FAILED
    when it raises (KILLED on Ctrl-C). A process killed outright cannot end its run:
    start_parent_run closes such runs the next time this run_dir starts."""
    handle = start_parent_run(cfg, run_name, tags)
    try:
        yield handle
    except BaseException as e:
        finish(handle, status="KILLED" if isinstance(e, KeyboardInterrupt) else "FAILED")
        raise
    finish(handle)


def start_parent_run(cfg, run_name: str, tags: dict | None = None) -> dict:
    """Create the parent run, log flattened params and the resolved YAML.
    Returns a small handle dict (uri, run id, experiment id) safe to pass around.
    Call it holding the run_dir's lock (rundir.claim): runs of this run_dir still
    RUNNING then belong to dead processes, and are closed as KILLED."""
    uri = tracking_uri(cfg)
    client = _client(uri)
    exp = experiment_id(client, cfg.tracking.experiment_name, Path(cfg.run_dir) / "mlartifacts")
    run_dir = str(Path(cfg.run_dir).resolve())
    close_abandoned_runs(client, exp, run_dir)
    run = client.create_run(exp, run_name=run_name, tags={"searchlearn.experiment": cfg.name, RUN_DIR_TAG: run_dir,
                                                          **(tags or {})})
    _log_params(client, run.info.run_id, flatten(cfg))
    client.log_text(run.info.run_id, to_yaml(cfg), "config/resolved.yaml")
    return {"uri": uri, "run_id": run.info.run_id, "experiment_id": exp}


def close_abandoned_runs(client, experiment: str, run_dir: str) -> list[str]:
    """End the RUNNING parent runs of `run_dir` (and their RUNNING round runs) as KILLED."""
    running = client.search_runs([experiment], "attributes.status = 'RUNNING'", max_results=1000)
    parents = [r.info.run_id for r in running if r.data.tags.get(RUN_DIR_TAG) == run_dir]
    for r in running:
        if r.info.run_id in parents or r.data.tags.get("mlflow.parentRunId") in parents:
            client.set_terminated(r.info.run_id, status="KILLED")
    return parents


def _log_params(client, run_id: str, params: dict) -> None:
    from mlflow.entities import Param

    items = [Param(k, str(v)[:6000]) for k, v in params.items()]
    for i in range(0, len(items), 100):  # MLflow caps a batch at 100 params
        client.log_batch(run_id, params=items[i : i + 100])


def log_metrics(handle: dict, metrics: dict, step: int | None = None, run_id: str | None = None) -> None:
    from mlflow.entities import Metric
    import time

    client = _client(handle["uri"])
    now = int(time.time() * 1000)
    rows = [Metric(k, float(v), now, step or 0) for k, v in metrics.items() if _is_number(v)]
    for i in range(0, len(rows), 500):
        client.log_batch(run_id or handle["run_id"], metrics=rows[i : i + 500])


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def start_round_run(handle: dict, round_index: int) -> str:
    client = _client(handle["uri"])
    run = client.create_run(
        handle["experiment_id"], run_name=f"round-{round_index}",
        tags={"mlflow.parentRunId": handle["run_id"], "searchlearn.round": str(round_index)},
    )
    client.log_param(run.info.run_id, "round", round_index)
    return run.info.run_id


def log_round(handle: dict, round_index: int, metrics: dict, refs: dict[str, dict]) -> str:
    """One child run per round: metrics, checkpoint references, and the round's
    search data as an MLflow dataset input plus a JSONL artifact."""
    client = _client(handle["uri"])
    child = start_round_run(handle, round_index)
    log_metrics(handle, metrics, step=round_index, run_id=child)
    log_metrics(handle, {k: v for k, v in metrics.items() if k.startswith("eval.")}, step=round_index)
    for name, ref in refs.items():
        client.log_dict(child, {"path": ref["path"], "sha256": ref["sha"]}, f"refs/{name}.json")
        client.set_tag(child, f"ref.{name}", ref["path"])
    search = refs.get("search")
    if search:
        log_search_dataset(client, child, Path(search["path"]) / "results.jsonl", round_index)
    if refs.get("rerank"):
        log_rerank(client, child, Path(refs["rerank"]["path"]) / "rerank_table.jsonl", round_index)
    if refs.get("scaling"):
        log_scaling(client, child, Path(refs["scaling"]["path"]) / "scaling_table.jsonl", round_index)
    client.set_terminated(child)
    return child


def log_search_dataset(client, run_id: str, path: Path, round_index: int) -> None:
    import mlflow
    import pandas as pd

    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    flat = [
        {"problem_id": r["problem_id"], "question": r["question"], "reference": r["reference"],
         "solution": c["text"], "answer": c["answer"], "correct": c["correct"], "score": c["score"],
         "selected": i == r["best"]}
        for r in rows for i, c in enumerate(r["candidates"])
    ]
    df = pd.DataFrame(flat, columns=["problem_id", "question", "reference", "solution", "answer", "correct",
                                     "score", "selected"])
    dataset = mlflow.data.from_pandas(df, source=str(path), name=f"search-round-{round_index}")
    from mlflow.entities import DatasetInput, InputTag

    client.log_inputs(run_id, datasets=[DatasetInput(dataset._to_mlflow_entity(),
                                                     tags=[InputTag("mlflow.data.context", "search")])])
    client.log_artifact(run_id, str(path), artifact_path="search")


def log_rerank(client, run_id: str, path: Path, round_index: int) -> None:
    """Best-of-N reranking table (accuracy per N and method) and its plot."""
    from searchlearn.reporting import rerank_figure

    table = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    client.log_table(run_id, data={k: [r[k] for r in table] for k in table[0]}, artifact_file="rerank/table.json")
    import matplotlib.pyplot as plt

    fig = rerank_figure(table, f"best-of-N reranking, round {round_index}")
    client.log_figure(run_id, fig, "rerank/accuracy_vs_n.png")
    plt.close(fig)


def log_scaling(client, run_id: str, path: Path, round_index: int) -> None:
    """Compute-matched comparison table (method, N, accuracy, tokens) and its plot."""
    from searchlearn.reporting import scaling_figure

    table = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not table:
        return
    client.log_table(run_id, data={k: [r[k] for r in table] for k in table[0]}, artifact_file="scaling/table.json")
    import matplotlib.pyplot as plt

    fig = scaling_figure(table, f"accuracy vs generated tokens, round {round_index}")
    client.log_figure(run_id, fig, "scaling/accuracy_vs_tokens.png")
    plt.close(fig)


def log_plots(handle: dict, history: Sequence[dict]) -> None:
    """Accuracy per round and accuracy vs cumulative generated tokens."""
    from searchlearn.reporting import accuracy_figures

    client = _client(handle["uri"])
    import matplotlib.pyplot as plt

    for name, fig in accuracy_figures(history).items():
        client.log_figure(handle["run_id"], fig, f"{PLOT_DIR}/{name}.png")
        plt.close(fig)  # pyplot keeps every figure alive until closed


def log_table(handle: dict, rows: Iterable[dict], name: str) -> None:
    client = _client(handle["uri"])
    rows = list(rows)
    keys = list(dict.fromkeys(k for r in rows for k in r))  # round 0 has no search/learn columns
    client.log_table(handle["run_id"], data={k: [r.get(k) for r in rows] for k in keys}, artifact_file=name)


CHECKPOINT_TAG = "searchlearn.checkpoint_sha256"


def log_final_model(handle: dict, model_dir: str, name: str = "policy") -> str:
    """Log the final policy as an MLflow pyfunc model (files copied) and return its URI.

    A checkpoint this experiment already logged (same content hash: a re-run whose
    best round came from the cache) is not copied again; its URI is returned and the
    run is tagged with it. A SmolLM2 policy is ~0.5 GB per copy."""
    import mlflow

    from searchlearn.artifacts import sha256_path
    from searchlearn.mlflow_model import PolicyModel

    mlflow.set_tracking_uri(handle["uri"])
    sha = sha256_path(model_dir)
    known = logged_model_with_sha(handle, sha)
    if known is not None:
        _client(handle["uri"]).set_tag(handle["run_id"], "searchlearn.final_model", known)
        return known
    with mlflow.start_run(run_id=handle["run_id"]):
        info = mlflow.pyfunc.log_model(
            name=name, python_model=PolicyModel(), artifacts={"checkpoint": model_dir},
            pip_requirements=["torch", "transformers"], tags={CHECKPOINT_TAG: sha},
        )
    _client(handle["uri"]).set_tag(handle["run_id"], "searchlearn.final_model", info.model_uri)
    return info.model_uri


def logged_model_with_sha(handle: dict, sha: str) -> str | None:
    """URI of a model logged in this experiment from a checkpoint with this hash."""
    import mlflow

    found = mlflow.search_logged_models(experiment_ids=[handle["experiment_id"]], output_format="list",
                                        filter_string=f"tags.`{CHECKPOINT_TAG}` = '{sha}'", max_results=1)
    return found[0].model_uri if found else None


def finish(handle: dict, status: str = "FINISHED") -> None:
    _client(handle["uri"]).set_terminated(handle["run_id"], status=status)



# ---- model registry: the champion policy, and policies named by URI or run ----------------

CHAMPION = "champion"


def registered_model_name(cfg) -> str:
    return cfg.tracking.registered_model or f"{cfg.tracking.experiment_name}-policy"


def register_champion(handle: dict, model_uri: str, name: str) -> str:
    """Point the `champion` alias of `name` at `model_uri` (aliases, not the deprecated
    stages), registering it as a new version unless it already is one (a re-run
    that logged nothing new). Returns the version."""
    import mlflow

    mlflow.set_tracking_uri(handle["uri"])
    client = _client(handle["uri"])
    version = registered_version(client, name, model_uri)
    if version is None:
        version = mlflow.register_model(model_uri, name, tags={"searchlearn.run_id": handle["run_id"]}).version
    client.set_registered_model_alias(name, CHAMPION, version)
    return str(version)


def registered_version(client, name: str, model_uri: str) -> str | None:
    """The version of `name` registered from `model_uri`, if any (none for a new name)."""
    for v in client.search_model_versions(f"name = '{name}'"):
        if v.source == model_uri:
            return str(v.version)
    return None


def round_policy(handle: dict, round_index: int) -> str:
    """The policy directory a round run of this parent recorded (see log_round)."""
    client = _client(handle["uri"])
    runs = client.search_runs(
        [handle["experiment_id"]], order_by=["attributes.start_time DESC"], max_results=1,
        filter_string=f"tags.mlflow.parentRunId = '{handle['run_id']}' "
                      f"and tags.`searchlearn.round` = '{round_index}'",
    )
    if not runs or "ref.policy" not in runs[0].data.tags:
        raise LookupError(f"run {handle['run_id']} recorded no policy for round {round_index}")
    return runs[0].data.tags["ref.policy"]


def resolve_policy(uri: str, model: str) -> str:
    """What a user names a policy by, as a local directory or an immutable model URI:
    a directory; `models:/<name>@<alias>` (pinned to its current version),
    `models:/<name>/<version>`, `models:/m-<id>` or `runs:/<id>/<path>`; or an MLflow
    run id (a round run: its policy directory; a parent run: the model it logged)."""
    import mlflow

    if Path(model).is_dir():
        return str(Path(model).resolve())
    client = _client(uri)
    if model.startswith("models:/"):
        name, at, alias = model[len("models:/"):].partition("@")
        return f"models:/{name}/{client.get_model_version_by_alias(name, alias).version}" if at else model
    if model.startswith("runs:/"):
        return model
    run = client.get_run(model)  # MlflowException naming the id when it does not exist
    if "ref.policy" in run.data.tags:
        return run.data.tags["ref.policy"]
    logged = mlflow.search_logged_models(experiment_ids=[run.info.experiment_id], output_format="list",
                                         filter_string=f"source_run_id = '{model}'")
    if not logged:
        raise LookupError(f"MLflow run {model} has neither a policy reference nor a logged model")
    return logged[0].model_uri


def download_policy(uri: str, model_uri: str, dst: str | Path) -> Path:
    """Download a logged policy (see log_final_model) and move its checkpoint to `dst`."""
    import shutil

    import mlflow
    from mlflow.models import Model

    mlflow.set_tracking_uri(uri)
    dst = Path(dst)
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri,
                                                     dst_path=str(dst.parent / "mlflow-model")))
    artifacts = Model.load(str(local)).flavors["python_function"].get("artifacts") or {}
    if "checkpoint" not in artifacts:
        raise ValueError(f"{model_uri} is not a searchlearn policy (no 'checkpoint' artifact)")
    shutil.move(str(local / artifacts["checkpoint"]["path"]), str(dst))
    shutil.rmtree(local, ignore_errors=True)
    return dst
