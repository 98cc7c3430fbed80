"""Evaluate one policy (a checkpoint, a run's policy, or the registry's champion) on
the experiment's held-out split, its search pool, or any GSM8K-format JSONL."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from flows.search_and_learn import eval_section, section
from searchlearn import tracking
from searchlearn.artifacts import sha256_file
from searchlearn.config import ConfigError, load_config
from tasks import evaluate_policy, prepare_problems
from tasks.eval_problems import prepare_eval_problems
from tasks.registry import fetch_policy


@flow(name="evaluate-model")
def evaluate_model(model: str, experiment: str = "quickstart", split: Literal["test", "train"] = "test",
                   jsonl: str | None = None, overrides: list[str] | None = None) -> dict:
    """Evaluate a policy with the experiment's eval settings; log the metrics to its MLflow experiment.

    Args:
        model: A checkpoint or policy directory, an MLflow run id, or a model URI such as
            `models:/searchlearn-policy@champion`.
        experiment: Experiment variant from conf/experiment/ (its problems, eval settings and MLflow store).
        split: `test` (held out) or `train` (the search pool) of the experiment's problems.
        jsonl: A GSM8K-format JSONL file ({"question", "answer": "... #### N"}) to use instead of `split`.
        overrides: `key=value` config overrides, e.g. `eval.k=8`.
    """
    cfg = load_config(experiment, overrides or [])
    if jsonl and not Path(jsonl).is_file():
        raise ConfigError(f"jsonl: file not found: {jsonl!r}")
    run_dir, seed = str(Path(cfg.run_dir).resolve()), cfg.seed
    handle = tracking.start_parent_run(cfg, run_name=f"{cfg.name}-eval-{flow_run.name}", tags={
        "searchlearn.flow": "evaluate-model", "searchlearn.model": model, "searchlearn.split": jsonl or split})
    try:
        policy = fetch_policy(model, handle["uri"], run_dir)
        problems = _eval_problems(cfg, split, jsonl, run_dir)
        scores = evaluate_policy(policy, problems, eval_section(cfg), section(cfg.generation), seed, 0, run_dir)
        tracking.log_metrics(handle, scores)
        tracking.finish(handle)
    except BaseException:
        tracking.finish(handle, status="FAILED")
        raise
    get_run_logger().info("%s on %s: greedy_acc=%.3f", model, jsonl or split, scores["eval.greedy_acc"])
    return scores


def _eval_problems(cfg, split: str, jsonl: str | None, run_dir: str) -> dict:
    """A problems reference whose test.jsonl is what to evaluate on."""
    if jsonl:
        path = str(Path(jsonl).resolve())
        return prepare_eval_problems(path, sha256_file(path), "gsm8k", run_dir)
    problems = prepare_problems(section(cfg.problems), cfg.init.num_demos, run_dir)  # the loop's, cached
    if split == "test":
        return problems
    return prepare_eval_problems(str(Path(problems["path"]) / "pool.jsonl"), problems["sha"], "problems", run_dir)
