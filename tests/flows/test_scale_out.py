"""Scale-out over problem shards: the same seed gives byte-identical search data and
step labels whether a round runs as 1 shard, 3 shards in threads, 2 shards on a real
local Ray instance (2 CPUs) or 2 shards on a local Dask cluster, and the Ray and Dask
shards really run in separate worker processes.

The two thread layouts share one run dir, so init and SFT run once there; the second
one's shards, merges and everything downstream are new (their keys name the shards).
Ray and Dask get a run dir each: shard keys do not name the runner (the results must
not depend on it), so a layout whose blocks another layout had already searched would
reuse those shards and never reach its workers (2 and 3 shards share the block [0, 1])."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowkit import mlflow_client, run_flow, task_states

pytestmark = pytest.mark.slow

# tiny_prm: round 1 is best-of-N, round 2 PRM-guided beam search; labels both rounds.
# 16 problems/round in blocks of 4; 8 labelled problems in blocks of 4.
LAYOUTS = {  # name: (runner, shards, processes expected to run the search shards, run dir)
    "threads-1": ("threads", 1, 1, "shared"),
    "threads-3": ("threads", 3, 1, "shared"),
    "ray-2": ("ray", 2, 2, "ray"),
    "dask-2": ("dask", 2, 2, "dask"),  # a LocalCluster of 2 worker processes
}


def _data(run_dir: Path) -> dict:
    """Round -> the bytes of the latest flow run's search results and labelled steps
    (paths from the round runs' MLflow tags)."""
    client = mlflow_client(run_dir)
    exp = client.get_experiment_by_name("searchlearn")
    rounds = client.search_runs([exp.experiment_id], "tags.`ref.labels` != ''",
                                order_by=["attributes.start_time DESC"], max_results=2)
    return {int(run.data.tags["searchlearn.round"]): (
        Path(run.data.tags["ref.search"], "results.jsonl").read_bytes(),
        Path(run.data.tags["ref.labels"], "labelled_steps.jsonl").read_bytes()) for run in rounds}


def test_results_do_not_depend_on_shard_count_or_runner(prefect_server, tmp_path):
    seen = {}
    for name, (runner, shards, workers, run_dir) in LAYOUTS.items():
        run_dir = tmp_path / run_dir
        state = run_flow("tiny_prm", run_dir, "execution.block_size=4", f"execution.task_runner={runner}",
                         f"execution.shards={shards}", "execution.ray_num_cpus=2")
        assert state.is_completed(), (name, state)
        history = state.result()
        states = task_states(state)
        # Every shard really ran in this layout (none reused from another one).
        assert states["search-shard"] == ["Completed"] * 2 * shards, (name, states)  # 4 blocks per round
        assert states["label-shard"] == ["Completed"] * 2 * min(shards, 2), (name, states)  # 2 blocks per round
        for row in history[1:]:
            assert row["search.shards"] == shards and row["search.workers"] == workers, (name, row)
        assert history[2]["search.algorithm"] == "beam_search"
        seen[name] = _data(run_dir)
    assert all(seen["threads-1"][r][0] and seen["threads-1"][r][1] for r in (1, 2))  # real data compared
    assert seen["threads-3"] == seen["threads-1"]
    assert seen["ray-2"] == seen["threads-1"]
    assert seen["dask-2"] == seen["threads-1"]
