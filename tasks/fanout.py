"""Scale-out: the task runner that shard tasks of search and labelling go to.

The flow's own tasks run in the flow's thread. Shard tasks are submitted to the
runner chosen by the `execution:` config section: a thread pool (default), a Ray
cluster through prefect-ray, or a Dask cluster through prefect-dask. The runner
is opened once per flow run, so a local Ray instance starts once, not per stage.

search_for_data and label_steps are the two sharded stages: shards, then a merge.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Iterator

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from searchlearn.sharding import plan_shards
from searchlearn.stages.labels import label_shard_stage, labelled_count, merge_labels_stage
from searchlearn.stages.search import merge_stage, shard_stage
from searchlearn.stages.stage import Stage
from tasks.stage import run, stage_task, trusted

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

    def map(self, stages: list[Stage], run_dir: str) -> list[dict]:
        """Run each shard's stage as a task; results in shard order.

        One shard on the thread runner runs inline: the flow thread then owns the
        generator engine, exactly as before scale-out existed (vLLM sets signal
        handlers that only the main thread may install)."""
        if self.kind == "threads" and len(stages) == 1:
            return [run(stages[0], run_dir)]
        with self._options():
            futures = [self.runner.submit(stage_task(s), {"stage": s, "run_dir": run_dir}) for s in stages]
        for f in futures:
            f.wait()
        return [trusted(s, f.state, run_dir) for s, f in zip(stages, futures)]

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


def search_for_data(fan: Fanout, cfg, policy: dict, problems: dict, scorer: dict | None, round_index: int,
                    run_dir: str) -> dict:
    """Spend search compute on this round's training problems, shard by shard, then merge."""
    shards = fan.map([shard_stage(cfg, policy, problems, scorer, round_index, fan.block_size, blocks)
                      for blocks in fan.plan(cfg.search.problems_per_round)], run_dir)
    return run(merge_stage(cfg, shards, problems, round_index), run_dir)


def label_steps(fan: Fanout, cfg, policy: dict, search_data: dict, round_index: int, run_dir: str) -> dict:
    """Monte-Carlo step labels (Math-Shepherd) for this round's searched solutions, shard by shard."""
    shards = fan.map([label_shard_stage(cfg, policy, search_data, round_index, fan.block_size, blocks)
                      for blocks in fan.plan(labelled_count(cfg, search_data))], run_dir)
    return run(merge_labels_stage(shards, round_index), run_dir)
