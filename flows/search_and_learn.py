"""The recipe: init -> (search -> learn -> evaluate) x rounds, cached and tracked."""

from __future__ import annotations

import time
from pathlib import Path

from omegaconf import OmegaConf
from prefect import flow, get_run_logger

from searchlearn import tracking
from searchlearn.config import load_config
from searchlearn.reporting import render_summary
from tasks import (evaluate_policy, init_base_model, learn_policy, prepare_problems, search_for_data,
                   sft_on_demos)


def section(node) -> dict:
    return OmegaConf.to_container(node, resolve=True)


@flow(name="search-and-learn")
def search_and_learn(experiment: str = "quickstart", overrides: list[str] | None = None) -> list[dict]:
    """Run an experiment variant from conf/experiment/ with `key=value` overrides."""
    cfg = load_config(experiment, overrides or [])
    run_dir, seed = str(Path(cfg.run_dir).resolve()), cfg.seed
    gen = section(cfg.generation)
    mlflow_run = tracking.start_parent_run(cfg, run_name=_run_name(cfg))
    try:
        problems = prepare_problems(section(cfg.problems), cfg.init.num_demos, run_dir)
        base = init_base_model(section(cfg.policy), problems, seed, run_dir)
        policy = init = sft_on_demos(base, problems, section(cfg.init), seed, run_dir)
        history = [_record(0, evaluate_policy(policy, problems, section(cfg.eval), gen, seed, 0, run_dir))]
        tracking.log_round(mlflow_run, 0, history[-1], {"policy": policy})
        for r in range(1, cfg.rounds + 1):
            started = time.perf_counter()
            data = search_for_data(policy, problems, None, section(cfg.search), gen, seed, r, run_dir)
            start = init if cfg.learn.init_from == "init" else policy
            policy = learn_policy(start, policy, data, section(cfg.learn), seed, r, run_dir)
            scores = evaluate_policy(policy, problems, section(cfg.eval), gen, seed, r, run_dir)
            history.append(_record(r, data, policy, scores, seconds=time.perf_counter() - started,
                                   previous=history[-1]))
            tracking.log_round(mlflow_run, r, history[-1], {"search": data, "policy": policy})
        _finish(mlflow_run, cfg, history, policy)
    except BaseException:
        tracking.finish(mlflow_run, status="FAILED")
        raise
    return history


def _record(round_index: int, *refs: dict, seconds: float | None = None, previous: dict | None = None) -> dict:
    """Flatten stage metrics into one history row (artifact paths/hashes dropped)."""
    row = {"round": round_index}
    for ref in refs:
        row.update({k: v for k, v in ref.items() if k not in ("path", "sha")})
    spent = row.get("search.tokens", 0) + row.get("eval.tokens", 0)
    row["tokens.cumulative"] = (previous or {}).get("tokens.cumulative", 0) + spent
    if seconds is not None:
        row["seconds"] = round(seconds, 1)
    return row


def _finish(mlflow_run: dict, cfg, history: list[dict], policy: dict) -> None:
    logger = get_run_logger()
    tracking.log_plots(mlflow_run, history)
    tracking.log_table(mlflow_run, history, "summary.json")
    if cfg.tracking.log_final_model:
        uri = tracking.log_final_model(mlflow_run, str(Path(policy["path"]) / "model"))
        logger.info("final policy logged as %s", uri)
    tracking.finish(mlflow_run)
    logger.info("\n%s", render_summary(history, f"{cfg.name}: search-and-learn summary"))


def _run_name(cfg) -> str:
    try:
        from prefect.runtime import flow_run

        return f"{cfg.name}-{flow_run.name}"
    except Exception:  # outside a flow run (should not happen): still name it
        return cfg.name
