"""Scale-out: the task runner that shard tasks of search and labelling go to.

The flow's own tasks run in the flow's thread. Shard tasks are submitted to the
runner chosen by the `execution:` config section: a thread pool (default), a Ray
cluster through prefect-ray, or a Dask cluster through prefect-dask. The runner
is opened once per flow run, so a local Ray instance starts once, not per stage.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Iterator

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from searchlearn.sharding import plan_shards

# A local Ray instance needs almost no object store here (tasks exchange small
# dicts of paths); Ray's default of 30 % of RAM would not fit next to a model.
LOCAL_RAY_OBJECT_STORE = 256 * 1024 * 1024


@dataclass
class Fanout:
    runner: TaskRunner
    kind: str
    shards: int
    block_size: int
    remote_options: dict

    def plan(self, num_items: int) -> list[list[int]]:
        return plan_shards(num_items, self.block_size, self.shards)

    def map(self, task, plan: list[list[int]], **params: Any) -> list[dict]:
        """Run `task(**params, blocks=...)` once per shard; results in shard order.

        One shard on the thread runner runs inline: the flow thread then owns the
        generator engine, exactly as before scale-out existed (vLLM sets signal
        handlers that only the main thread may install)."""
        common = {**params, "block_size": self.block_size}
        if self.kind == "threads" and len(plan) == 1:
            return [task(**common, blocks=plan[0])]
        with self._options():
            futures = [self.runner.submit(task, {**common, "blocks": blocks}) for blocks in plan]
        return [f.result() for f in futures]

    def _options(self):
        if self.kind != "ray" or not self.remote_options:
            return nullcontext()
        from prefect_ray.context import remote_options

        return remote_options(**self.remote_options)


def make_task_runner(exec_cfg: dict) -> tuple[TaskRunner, dict]:
    """(runner, per-shard remote options) for the `execution:` section."""
    kind = exec_cfg["task_runner"]
    if kind == "threads":
        return ThreadPoolTaskRunner(max_workers=exec_cfg["max_workers"] or exec_cfg["shards"]), {}
    if kind == "ray":
        from prefect_ray import RayTaskRunner

        address = exec_cfg["ray_address"] or None
        init: dict = {"include_dashboard": False}
        if address is None:  # a local instance: size it; a cluster is sized by its operator
            init["object_store_memory"] = LOCAL_RAY_OBJECT_STORE
            if exec_cfg["ray_num_cpus"]:
                init["num_cpus"] = exec_cfg["ray_num_cpus"]
        options = {"num_cpus": exec_cfg["cpus_per_shard"]}
        if exec_cfg["gpus_per_shard"]:
            options["num_gpus"] = exec_cfg["gpus_per_shard"]
        return RayTaskRunner(address=address, init_kwargs=init), options
    if kind == "dask":
        from prefect_dask import DaskTaskRunner

        if exec_cfg["dask_address"]:
            return DaskTaskRunner(address=exec_cfg["dask_address"]), {}
        return DaskTaskRunner(cluster_kwargs={"n_workers": exec_cfg["shards"], "threads_per_worker": 1}), {}
    raise ValueError(f"execution.task_runner={kind!r} is not one of: threads, ray, dask")


@contextmanager
def fanout(exec_cfg: dict) -> Iterator[Fanout]:
    runner, options = make_task_runner(exec_cfg)
    with runner:
        yield Fanout(runner, exec_cfg["task_runner"], exec_cfg["shards"], exec_cfg["block_size"], options)
