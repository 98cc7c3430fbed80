"""The one Prefect task every stage runs in.

A stage arrives declared (searchlearn.stages.stage.Stage): its key, which names its
output directory, is also the cache key here, so Prefect's cache and the directory
on disk always agree. The run directory joins the key because the cached result
holds paths inside it. A cache hit skips the body; with --refresh-cache
(PREFECT_TASKS_REFRESH_CACHE) the body runs and rebuilds the output in place.

Prefect's cache record outlives the directory it points to: a hit is trusted only
while that directory is complete and holds the content the record hashed. A
directory deleted or changed since (a cleaned-up artifacts folder, a file edited by
hand) makes the stage rebuild in place, so no stage downstream is keyed by, or reads,
an output that no longer exists.
"""

from __future__ import annotations

import logging

from prefect import task
from prefect.context import TaskRunContext
from prefect.settings import PREFECT_TASKS_REFRESH_CACHE

from searchlearn.artifacts import is_complete_dir, sha256_path, stable_hash
from searchlearn.stages.stage import Stage

log = logging.getLogger("searchlearn")


def stage_cache_key(context, parameters: dict) -> str:
    return f"{parameters['stage'].key}-{stable_hash(str(parameters['run_dir']))[:12]}"


@task(persist_result=True, cache_key_fn=stage_cache_key, retries=0)
def run_stage(stage: Stage, run_dir: str) -> dict:
    return stage.run(run_dir, refresh=_refreshing())


def _refreshing() -> bool:
    """Prefect's own refresh switch (per task, else the setting), read where it applies."""
    task_run = TaskRunContext.get()
    if task_run is not None and task_run.task.refresh_cache is not None:
        return task_run.task.refresh_cache
    return PREFECT_TASKS_REFRESH_CACHE.value()


def stage_task(stage: Stage):
    """The task, named for this stage; a round's task runs carry the round
    (`search-for-data-r2`), so the UI's task list and graph read round by round."""
    if stage.round is None:
        return run_stage.with_options(name=stage.task)
    return run_stage.with_options(name=stage.task, task_run_name=f"{stage.task}-r{stage.round}")


def run(stage: Stage, run_dir: str) -> dict:
    """Run a stage as a task in the flow's thread; returns its artifact reference."""
    return trusted(stage, stage_task(stage)(stage, run_dir, return_state=True), run_dir)


def trusted(stage: Stage, state, run_dir: str) -> dict:
    """The reference a finished task run returned, if its output is still on disk as
    recorded; a cache hit whose output is gone or changed is rebuilt in place."""
    ref = state.result()
    if not state.is_completed() or state.name != "Cached" or intact(ref):
        return ref
    log.warning("the cached output of %s (%s) is missing or changed on disk: rebuilding it",
                stage.directory, ref["path"])
    return stage_task(stage).with_options(refresh_cache=True)(stage, run_dir)


def intact(ref: dict) -> bool:
    """The artifact directory is complete and holds what its reference hashed."""
    return is_complete_dir(ref["path"]) and sha256_path(ref["path"]) == ref["sha"]
