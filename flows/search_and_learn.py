"""The recipe: init -> (search -> label -> train PRM -> learn -> evaluate) x rounds, cached and tracked."""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

from prefect import flow, get_run_logger

from searchlearn import tracking
from searchlearn.config import load_config
from searchlearn.learn import LEARNERS
from searchlearn.preflight import preflight
from searchlearn.reporting import render_summary
from searchlearn.rundir import claim
from searchlearn.search import ALGORITHMS
from searchlearn.stages.common import active, section
from searchlearn.problems.sources import eval_set
from searchlearn.stages.data import eval_file_stage, problems_stage
from searchlearn.stages.evaluate import eval_stage, rerank_stage, scaling_stage
from searchlearn.stages.learn import learn_stage
from searchlearn.stages.policy import base_model_stage, sft_stage
from searchlearn.stages.reward import reward_model_stage, trained_kinds
from tasks import fanout, label_steps, run, search_for_data

# For bench/orchestration.py, which slices configs as the flow once did; the stages
# own their slices now (stages.search.search_config, stages.learn.learn_config).
__all__ = ["active", "search_and_learn"]
SEARCH_FAMILIES = tuple(name for name in ALGORITHMS if name != "best_of_n")
LEARN_FAMILIES = tuple(LEARNERS)


@flow(name="search-and-learn")
def search_and_learn(experiment: str = "quickstart", overrides: list[str] | None = None) -> list[dict]:
    """Run an experiment variant from conf/experiment/ with `key=value` overrides."""
    cfg = load_config(experiment, overrides or [])
    preflight(cfg)
    with claim(cfg.run_dir) as run_dir, tracking.parent_run(cfg, run_name=_run_name(cfg)) as mlflow_run:
        history = recipe(cfg, run_dir, mlflow_run)
        _finish(mlflow_run, cfg, history)
    return history


def recipe(cfg, run_dir: str, mlflow_run: dict) -> list[dict]:
    stage = partial(run, run_dir=run_dir)
    problems = stage(problems_stage(cfg))
    base = stage(base_model_stage(cfg, problems))
    policy = init = stage(sft_stage(cfg, base, problems))
    extra_sets = {name: stage(eval_file_stage(path)) for name, path in map(eval_set, cfg.eval.extra_sets)}
    history = [_record(0, *evaluate(cfg, policy, problems, extra_sets, 0, run_dir))]
    tracking.log_round(mlflow_run, 0, history[-1], {"policy": policy})
    reward_models, labels = {}, []
    with fanout(section(cfg.execution)) as fan:  # search and labelling fan out over problem shards
        for r in range(1, cfg.rounds + 1):
            started = time.perf_counter()
            scorer = reward_models.get(cfg.prm.kind)  # last round's: none in round 1
            searched = search_for_data(fan, cfg, policy, problems, scorer, r, run_dir)
            refs = {"search": searched}
            if cfg.prm.enabled:
                labels.append(label_steps(fan, cfg, policy, searched, r, run_dir))
                reward_models = retrain_reward_models(cfg, policy, labels, reward_models, r, run_dir)
                refs.update(labels=labels[-1], **reward_models)
            start = init if cfg.learn.init_from == "init" else policy
            policy = stage(learn_stage(cfg, start, policy, searched, shaping(cfg, reward_models), r))
            refs["policy"] = policy
            scores = evaluate(cfg, policy, problems, extra_sets, r, run_dir)
            if reward_models:
                refs["rerank"] = stage(rerank_stage(cfg, policy, problems, reward_models, r))
            if cfg.eval.scaling.enabled:
                refs["scaling"] = stage(scaling_stage(cfg, policy, problems, reward_models.get(cfg.prm.kind), r))
            history.append(_record(r, *scores, *refs.values(), seconds=time.perf_counter() - started,
                                   previous=history[-1]))
            tracking.log_round(mlflow_run, r, history[-1], refs)
    return history


def evaluate(cfg, policy: dict, problems: dict, extra_sets: dict[str, dict], r: int, run_dir: str) -> list[dict]:
    """The round's policy on the held-out split, then on each extra eval set."""
    return [run(eval_stage(cfg, policy, problems, r), run_dir),
            *(run(eval_stage(cfg, policy, data, r, name), run_dir) for name, data in extra_sets.items())]


def retrain_reward_models(cfg, policy: dict, labels: list[dict], previous: dict, r: int, run_dir: str) -> dict:
    """The round's reward model(s), trained on every round's labels so far. Warm
    start from last round's model of the same kind, else from the policy."""
    models = {}
    for kind in trained_kinds(cfg):
        init = previous[kind] if cfg.prm.init_from == "previous" and kind in previous else policy
        models[kind] = run(reward_model_stage(cfg, init, labels, kind, r), run_dir)
    return models


def shaping(cfg, reward_models: dict) -> dict | None:
    """The PRM that shapes GRPO's reward, only when it is asked for (a PRM sha in the
    learn key of RFT/DPO would retrain them for nothing)."""
    if cfg.learn.algorithm == "grpo" and cfg.learn.grpo.prm_weight > 0:
        return reward_models.get(cfg.prm.kind)
    return None


def _record(round_index: int, *refs: dict, seconds: float | None = None, previous: dict | None = None) -> dict:
    """Flatten stage metrics into one history row (artifact paths/hashes dropped)."""
    row = {"round": round_index}
    for ref in refs:
        row.update({k: v for k, v in ref.items() if k not in ("path", "sha", "kind")})
    spent = sum(v for k, v in row.items() if k.endswith(".tokens") and k.split(".")[0] in
                ("search", "eval", "labels", "rerank", "scaling"))
    row["tokens.cumulative"] = (previous or {}).get("tokens.cumulative", 0) + spent
    if seconds is not None:
        row["seconds"] = round(seconds, 1)
    return row


def _finish(mlflow_run: dict, cfg, history: list[dict]) -> None:
    logger = get_run_logger()
    tracking.log_plots(mlflow_run, history)
    tracking.log_table(mlflow_run, history, "summary.json")
    if cfg.tracking.log_final_model:
        best = _best_round(history)
        uri = tracking.log_final_model(mlflow_run, str(Path(tracking.round_policy(mlflow_run, best)) / "model"))
        name = tracking.registered_model_name(cfg)
        version = tracking.register_champion(mlflow_run, uri, name)
        logger.info("round %d policy (best eval.greedy_acc) logged as %s, registered as %s version %s @%s",
                    best, uri, name, version, tracking.CHAMPION)
    logger.info("\n%s", render_summary(history, f"{cfg.name}: search-and-learn summary"))


def _best_round(history: list[dict]) -> int:
    """The round whose policy becomes the champion: best eval.greedy_acc, ties -> later round."""
    return max(history, key=lambda row: (row["eval.greedy_acc"], row["round"]))["round"]


def _run_name(cfg) -> str:
    try:
        from prefect.runtime import flow_run

        return f"{cfg.name}-{flow_run.name}"
    except Exception:  # outside a flow run (should not happen): still name it
        return cfg.name
