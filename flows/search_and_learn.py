"""The recipe: init -> (search -> learn -> evaluate) x rounds, cached and tracked."""

from __future__ import annotations

import time
from pathlib import Path

from omegaconf import OmegaConf
from prefect import flow, get_run_logger

from searchlearn import tracking
from searchlearn.config import load_config
from searchlearn.learn.launch import launch_settings
from searchlearn.reporting import render_summary
from tasks import (evaluate_policy, evaluate_reranking, evaluate_scaling, init_base_model, label_steps,
                   learn_policy, prepare_problems, search_for_data, sft_on_demos, train_reward_model)
from tasks.fanout import fanout


def section(node) -> dict:
    return OmegaConf.to_container(node, resolve=True)


def active(node, choice: str, families: tuple[str, ...]) -> dict:
    """A config section with only the selected algorithm's subsection kept, so tuning
    an algorithm that is not in use does not invalidate cached stages."""
    d = section(node)
    return {k: v for k, v in d.items() if k not in families or k == d[choice]}


def eval_section(cfg) -> dict:
    """eval settings without the scaling comparison, which is a stage of its own:
    tuning it must not re-run the plain evaluation."""
    return {k: v for k, v in section(cfg.eval).items() if k != "scaling"}


SEARCH_FAMILIES = ("beam_search", "dvts", "mcts")
SCALING_SEARCH_KEYS = ("temperature", "top_p", "max_new_tokens", "max_step_tokens", "max_steps", "aggregation",
                       *SEARCH_FAMILIES)


def scaling_search(cfg) -> dict:
    """The search settings the scaling comparison reads (sampling + every tree
    algorithm's section), not the data-generation ones."""
    return {k: v for k, v in section(cfg.search).items() if k in SCALING_SEARCH_KEYS}
LEARN_FAMILIES = ("rft", "dpo", "grpo")


@flow(name="search-and-learn")
def search_and_learn(experiment: str = "quickstart", overrides: list[str] | None = None) -> list[dict]:
    """Run an experiment variant from conf/experiment/ with `key=value` overrides."""
    cfg = load_config(experiment, overrides or [])
    run_dir, seed = str(Path(cfg.run_dir).resolve()), cfg.seed
    gen = section(cfg.generation)
    search_cfg = active(cfg.search, "algorithm", SEARCH_FAMILIES)
    learn_cfg = active(cfg.learn, "algorithm", LEARN_FAMILIES)
    prm, eval_cfg = section(cfg.prm), eval_section(cfg)
    launch = launch_settings(section(cfg.execution))  # training in this process, or under accelerate launch
    mlflow_run = tracking.start_parent_run(cfg, run_name=_run_name(cfg))
    try:
        problems = prepare_problems(section(cfg.problems), cfg.init.num_demos, run_dir)
        base = init_base_model(section(cfg.policy), problems, seed, run_dir)
        policy = init = sft_on_demos(base, problems, section(cfg.init), seed, run_dir, launch)
        history = [_record(0, evaluate_policy(policy, problems, eval_cfg, gen, seed, 0, run_dir))]
        tracking.log_round(mlflow_run, 0, history[-1], {"policy": policy})
        reward_models, labels = {}, []
        with fanout(section(cfg.execution)) as fan:  # search and labelling fan out over problem shards
            for r in range(1, cfg.rounds + 1):
                started = time.perf_counter()
                scorer = reward_models.get(cfg.prm.kind)
                data = search_for_data(fan, policy, problems, scorer, search_cfg, gen, seed, r, run_dir)
                if cfg.prm.enabled:
                    labels.append(label_steps(fan, policy, data, prm, gen, seed, r, run_dir))
                    reward_models = retrain_reward_models(cfg, prm, policy, labels, reward_models, r, run_dir, launch)
                start = init if cfg.learn.init_from == "init" else policy
                policy = learn_policy(start, policy, data, learn_cfg, seed, r, run_dir,
                                      scorer=shaping(cfg, reward_models), launch=launch)
                scores = evaluate_policy(policy, problems, eval_cfg, gen, seed, r, run_dir)
                rerank = (evaluate_reranking(policy, problems, reward_models, prm, eval_cfg, gen, seed, r,
                                             run_dir) if reward_models else {})
                scaling = (evaluate_scaling(policy, problems, reward_models.get(cfg.prm.kind),
                                            section(cfg.eval.scaling), scaling_search(cfg), eval_cfg, gen, seed, r,
                                            run_dir) if cfg.eval.scaling.enabled else {})
                history.append(_record(r, data, policy, scores, rerank, scaling, *reward_models.values(),
                                       *labels[-1:], seconds=time.perf_counter() - started, previous=history[-1]))
                refs = {"search": data, **({"labels": labels[-1]} if labels else {}), "policy": policy,
                        **reward_models, **({"rerank": rerank} if rerank else {}),
                        **({"scaling": scaling} if scaling else {})}
                tracking.log_round(mlflow_run, r, history[-1], refs)
        _finish(mlflow_run, cfg, history, policy)
    except BaseException:
        tracking.finish(mlflow_run, status="FAILED")
        raise
    return history


def retrain_reward_models(cfg, prm: dict, policy: dict, labels: list[dict], previous: dict, r: int,
                          run_dir: str, launch: dict | None) -> dict:
    """The round's reward model(s), trained on every round's labels so far. Warm
    start from last round's model of the same kind, else from the policy."""
    kinds = [cfg.prm.kind] + (["orm"] if cfg.prm.train_orm and cfg.prm.kind != "orm" else [])
    models = {}
    for kind in kinds:
        init = previous.get(kind) if cfg.prm.init_from == "previous" and kind in previous else policy
        models[kind] = train_reward_model(init, labels, prm, kind, cfg.seed, r, run_dir, launch)
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
    spent = sum(row.get(k, 0) for k in ("search.tokens", "eval.tokens", "labels.tokens", "rerank.tokens",
                                        "scaling.tokens"))
    row["tokens.cumulative"] = (previous or {}).get("tokens.cumulative", 0) + spent
    if seconds is not None:
        row["seconds"] = round(seconds, 1)
    return row


def _finish(mlflow_run: dict, cfg, history: list[dict], policy: dict) -> None:
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
    tracking.finish(mlflow_run)
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
