import shutil
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from searchlearn import registry
from searchlearn.artifacts import artifact_ref, sha256_path, stable_hash
from searchlearn.stages.common import produce


# Not cached on its input: `models:/<name>@champion` moves. The download is reused
# from disk instead, keyed by the version the alias pointed at (or a directory's content).
@task(name="fetch-policy", cache_policy=NO_CACHE)
def fetch_policy(model: str, tracking_uri: str, run_dir: str) -> dict:
    """A policy reference (a directory holding `model/`) for a checkpoint directory, a
    policy stage directory, an MLflow run id, or a `models:/` / `runs:/` URI."""
    source = registry.resolve_policy(tracking_uri, model)
    if Path(source, "model").is_dir():  # a policy stage directory, as the loop writes them
        return artifact_ref(source)
    key = sha256_path(source) if Path(source).is_dir() else source
    out = Path(run_dir).resolve() / "artifacts" / "fetched-policy" / stable_hash(key)[:16]
    return produce(out, lambda tmp: _materialize(source, tracking_uri, tmp / "model"))


def _materialize(source: str, tracking_uri: str, dst: Path) -> dict:
    if Path(source).is_dir():  # a bare checkpoint directory
        shutil.copytree(source, dst)
    else:
        registry.download_policy(tracking_uri, source, dst)
    return {"source": source}
