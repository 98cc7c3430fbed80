"""The champion policy in MLflow (its logged model, registered version and alias, each
saying which round it is and why it won) and the policies users name by URI, run
id or directory. MLflow only; handles come from searchlearn.tracking."""

from __future__ import annotations

from pathlib import Path

from searchlearn.tracking import DESCRIPTION_TAG, mlflow_client

CHECKPOINT_TAG = "searchlearn.checkpoint_sha256"
CHAMPION = "champion"


def log_final_model(handle: dict, model_dir: str, step: int = 0, name: str = "policy") -> str:
    """Log the final policy as an MLflow pyfunc model (files copied) and return its URI.

    `step` is the champion's round: MLflow links the parent run's metrics at that step
    to the logged model, so the model shows its own round's scores.

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
        mlflow_client(handle["uri"]).set_tag(handle["run_id"], "searchlearn.final_model", known)
        return known
    with mlflow.start_run(run_id=handle["run_id"]):
        info = mlflow.pyfunc.log_model(
            name=name, python_model=PolicyModel(), artifacts={"checkpoint": model_dir}, step=step,
            pip_requirements=["torch", "transformers"], tags={CHECKPOINT_TAG: sha},
        )
    mlflow_client(handle["uri"]).set_tag(handle["run_id"], "searchlearn.final_model", info.model_uri)
    return info.model_uri


def logged_model_with_sha(handle: dict, sha: str) -> str | None:
    """URI of a model logged in this experiment from a checkpoint with this hash."""
    import mlflow

    found = mlflow.search_logged_models(experiment_ids=[handle["experiment_id"]], output_format="list",
                                        filter_string=f"tags.`{CHECKPOINT_TAG}` = '{sha}'", max_results=1)
    return found[0].model_uri if found else None


def describe_logged_model(handle: dict, model_uri: str, description: str, tags: dict[str, str]) -> None:
    """Tags and a description (the UI's Description column) on a `models:/m-...` model."""
    model_id = model_uri.removeprefix("models:/")
    mlflow_client(handle["uri"]).set_logged_model_tags(model_id, {**tags, DESCRIPTION_TAG: description})


def registered_model_name(cfg) -> str:
    return cfg.tracking.registered_model or f"{cfg.tracking.experiment_name}-policy"


def register_champion(handle: dict, model_uri: str, name: str, description: str | None = None,
                      tags: dict[str, str] | None = None) -> str:
    """Point the `champion` alias of `name` at `model_uri` (aliases, not the deprecated
    stages), registering it as a new version unless it already is one (a re-run
    that logged nothing new). The version gets the description and tags of this
    run's choice. Returns the version."""
    import mlflow

    mlflow.set_tracking_uri(handle["uri"])
    client = mlflow_client(handle["uri"])
    version = registered_version(client, name, model_uri)
    if version is None:
        version = mlflow.register_model(model_uri, name, tags={"searchlearn.run_id": handle["run_id"]}).version
    if description is not None:
        client.update_model_version(name, version, description=description)
    for key, value in (tags or {}).items():
        client.set_model_version_tag(name, version, key, value)
    client.set_registered_model_alias(name, CHAMPION, version)
    return str(version)


def crown_champion(handle: dict, cfg, history: list[dict], best: int, model_dir: str, run_name: str) -> str:
    """Log round `best`'s policy (with that round's metrics), describe it, register it
    as `<name>@champion`; returns the champion's markdown for the run report."""
    from searchlearn.champion import champion_description, champion_tags

    facts = {"experiment": cfg.name, "search": cfg.search.algorithm, "learn": cfg.learn.algorithm}
    description = champion_description(history, best, run_name=run_name, **facts)
    tags = champion_tags(history, best, parent_run_id=handle["run_id"], **facts)
    uri = log_final_model(handle, model_dir, step=best)
    describe_logged_model(handle, uri, description, tags)
    name = registered_model_name(cfg)
    version = register_champion(handle, uri, name, description, tags)
    return f"{description}\n\nLogged as `{uri}`, registered as `{name}` version {version} (`@{CHAMPION}`)."


def registered_version(client, name: str, model_uri: str) -> str | None:
    """The version of `name` registered from `model_uri`, if any (none for a new name)."""
    for v in client.search_model_versions(f"name = '{name}'"):
        if v.source == model_uri:
            return str(v.version)
    return None


def round_policy(handle: dict, round_index: int) -> str:
    """The policy directory a round run of this parent recorded (see tracking.log_round)."""
    client = mlflow_client(handle["uri"])
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
    client = mlflow_client(uri)
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
