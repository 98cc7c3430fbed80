"""Search-only data generation: problems -> init policy -> search, with the loop's
cached tasks, so generating data and running the loop never repeat each other's work."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from pydantic import Field

from flows import links
from flows.params import ExperimentName, experiment_source
from searchlearn import tracking
from searchlearn.config import load_config
from searchlearn.preflight import preflight
from searchlearn.rundir import claim
from searchlearn.stages.common import section
from searchlearn.stages.data import problems_stage
from searchlearn.stages.policy import base_model_stage, sft_stage
from tasks import fanout, run, search_for_data


@flow(name="generate-data")
def generate_data(experiment: ExperimentName = "quickstart", overrides: list[str] | None = None,
                  rounds: Annotated[int, Field(ge=1)] = 1, experiment_file: str | None = None) -> list[str]:
    """Search the initial policy's solutions to fresh training problems each round; return the datasets.

    Round r here is the loop's round r search whenever the loop's policy is still the
    initial one (always for round 1): the stages are declared the same way, so both
    share cached results.

    Args:
        experiment: Experiment variant from conf/experiment/ (problems, policy, search settings).
        overrides: `key=value` config overrides, e.g. `search.n=16`.
        rounds: Search rounds, each on a new sample of training problems.
        experiment_file: Path to your own experiment YAML, run instead of `experiment`.
    """
    source, overrides = experiment_source(experiment, experiment_file), list(overrides or [])
    cfg = load_config(source, overrides)
    preflight(cfg)
    name = f"{cfg.name}-data-{flow_run.name}"
    tags = {"searchlearn.flow": "generate-data", **links.flow_run_tags(None, overrides)}
    with claim(cfg.run_dir) as run_dir, tracking.parent_run(cfg, run_name=name, tags=tags) as handle:
        problems = run(problems_stage(cfg), run_dir)
        base = run(base_model_stage(cfg, problems), run_dir)
        policy = run(sft_stage(cfg, base, problems), run_dir)
        datasets = []
        with fanout(section(cfg.execution)) as fan:
            for r in range(1, rounds + 1):
                round_run = tracking.start_round_run(handle, r)
                data = search_for_data(fan, cfg, policy, problems, None, r, run_dir)
                tracking.log_round(handle, round_run, r, data, {"search": data, "policy": policy})
                datasets.append(str(Path(data["path"]) / "results.jsonl"))
    get_run_logger().info("search data:\n%s", "\n".join(datasets))
    return datasets
