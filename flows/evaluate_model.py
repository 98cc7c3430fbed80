"""Evaluate one policy (a checkpoint, a run's policy, or the registry's champion) on
the experiment's held-out split, its search pool, or any GSM8K-format JSONL."""

from __future__ import annotations

from typing import Literal

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from flows import links
from flows.params import ExperimentName, experiment_source
from searchlearn import tracking
from searchlearn.config import load_config
from searchlearn.preflight import preflight, problem_file
from searchlearn.rundir import claim
from searchlearn.stages.data import eval_file_stage, eval_pool_stage, problems_stage
from searchlearn.stages.evaluate import eval_stage
from tasks import run
from tasks.registry import fetch_policy


@flow(name="evaluate-model")
def evaluate_model(model: str, experiment: ExperimentName = "quickstart", split: Literal["test", "train"] = "test",
                   jsonl: str | None = None, overrides: list[str] | None = None,
                   experiment_file: str | None = None) -> dict:
    """Evaluate a policy with the experiment's eval settings; log the metrics to its MLflow experiment.

    Args:
        model: A checkpoint or policy directory, an MLflow run id, or a model URI such as
            `models:/searchlearn-policy@champion`.
        experiment: Experiment variant from conf/experiment/ (its problems, eval settings and MLflow store).
        split: `test` (held out) or `train` (the search pool) of the experiment's problems.
        jsonl: A GSM8K-format JSONL file ({"question", "answer": "... #### N"}) to use instead of `split`.
        overrides: `key=value` config overrides, e.g. `eval.k=8`.
        experiment_file: Path to your own experiment YAML, used instead of `experiment`.
    """
    source, overrides = experiment_source(experiment, experiment_file), list(overrides or [])
    cfg = load_config(source, overrides)
    preflight(cfg)
    if jsonl:
        problem_file("jsonl", jsonl)
    command = links.cli_command("eval", model, "--experiment", source,
                                *(["--jsonl", jsonl] if jsonl else ["--split", split]), *overrides)
    tags = {"searchlearn.flow": "evaluate-model", "searchlearn.model": model, "searchlearn.split": jsonl or split,
            **links.flow_run_tags(command, overrides)}
    with claim(cfg.run_dir) as run_dir, \
            tracking.parent_run(cfg, run_name=f"{cfg.name}-eval-{flow_run.name}", tags=tags) as handle:
        policy = fetch_policy(model, handle["uri"], run_dir)
        problems = _eval_problems(cfg, split, jsonl, run_dir)
        scores = run(eval_stage(cfg, policy, problems, 0), run_dir)
        tracking.log_evaluation(handle, scores, problems)
    get_run_logger().info("%s on %s: greedy_acc=%.3f", model, jsonl or split, scores["eval.greedy_acc"])
    return scores


def _eval_problems(cfg, split: str, jsonl: str | None, run_dir: str) -> dict:
    """A problems reference whose test.jsonl is what to evaluate on."""
    if jsonl:
        return run(eval_file_stage(jsonl), run_dir)
    problems = run(problems_stage(cfg), run_dir)  # the loop's, cached
    return problems if split == "test" else run(eval_pool_stage(problems), run_dir)
