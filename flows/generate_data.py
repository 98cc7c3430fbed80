"""Search-only data generation: problems -> init policy -> search, with the loop's
cached tasks, so generating data and running the loop never repeat each other's work."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from pydantic import Field

from flows.search_and_learn import SEARCH_FAMILIES, active, section
from searchlearn import tracking
from searchlearn.config import load_config
from searchlearn.learn.launch import launch_settings
from tasks import init_base_model, prepare_problems, search_for_data, sft_on_demos
from tasks.fanout import fanout


@flow(name="generate-data")
def generate_data(experiment: str = "quickstart", overrides: list[str] | None = None,
                  rounds: Annotated[int, Field(ge=1)] = 1) -> list[str]:
    """Search the initial policy's solutions to fresh training problems each round; return the datasets.

    Round r here is the loop's round r search whenever the loop's policy is still the
    initial one (always for round 1), so both share cached results.

    Args:
        experiment: Experiment variant from conf/experiment/ (problems, policy, search settings).
        overrides: `key=value` config overrides, e.g. `search.n=16`.
        rounds: Search rounds, each on a new sample of training problems.
    """
    cfg = load_config(experiment, overrides or [])
    run_dir, seed, gen = str(Path(cfg.run_dir).resolve()), cfg.seed, section(cfg.generation)
    search_cfg = active(cfg.search, "algorithm", SEARCH_FAMILIES)  # exactly what the loop passes: same cache keys
    handle = tracking.start_parent_run(cfg, run_name=f"{cfg.name}-data-{flow_run.name}",
                                       tags={"searchlearn.flow": "generate-data"})
    try:
        problems = prepare_problems(section(cfg.problems), cfg.init.num_demos, run_dir)
        base = init_base_model(section(cfg.policy), problems, seed, run_dir)
        launch = launch_settings(section(cfg.execution))  # same key as the loop's init, so it is shared
        policy = sft_on_demos(base, problems, section(cfg.init), seed, run_dir, launch)
        datasets = []
        with fanout(section(cfg.execution)) as fan:
            for r in range(1, rounds + 1):
                data = search_for_data(fan, policy, problems, None, search_cfg, gen, seed, r, run_dir)
                tracking.log_round(handle, r, data, {"search": data, "policy": policy})
                datasets.append(str(Path(data["path"]) / "results.jsonl"))
        tracking.finish(handle)
    except BaseException:
        tracking.finish(handle, status="FAILED")
        raise
    get_run_logger().info("search data:\n%s", "\n".join(datasets))
    return datasets
