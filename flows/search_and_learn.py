"""The recipe: init -> (search -> label -> train PRM -> learn -> evaluate) x rounds, cached and tracked."""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

from prefect import flow, get_run_logger

from flows import links
from flows.params import ExperimentName, experiment_source
from searchlearn import registry, tracking
from searchlearn.champion import best_round
from searchlearn.config import load_config
from searchlearn.learn import LEARNERS
from searchlearn.preflight import preflight
from searchlearn.reporting import render_summary, run_report
from searchlearn.rundir import claim
from searchlearn.search import ALGORITHMS
from searchlearn.stages.common import active, section
from searchlearn.problems.sources import eval_set
from searchlearn.stages.data import eval_file_stage, problems_stage
from searchlearn.stages.evaluate import eval_stage, rerank_stage, scaling_stage
from searchlearn.stages.learn import learn_stage
from searchlearn.stages.policy import base_model_stage, sft_stage
from searchlearn.stages.labels import trained_kinds
from searchlearn.stages.reward import reward_model_stage
from tasks import fanout, label_steps, run, search_for_data

# For bench/orchestration.py, which slices configs as the flow once did; the stages
# own their slices now (stages.search.search_config, stages.learn.learn_config).
__all__ = ["active", "search_and_learn"]
SEARCH_FAMILIES = tuple(name for name in ALGORITHMS if name != "best_of_n")
LEARN_FAMILIES = tuple(LEARNERS)


@flow(name="search-and-learn")
def search_and_learn(experiment: ExperimentName = "quickstart", overrides: list[str] | None = None,
                     experiment_file: str | None = None) -> list[dict]:
    """The search-and-learn loop: init, then (search -> label -> train PRM -> learn -> evaluate) x rounds.

    Args:
        experiment: A shipped variant from conf/experiment/ (ignored when experiment_file is set).
        overrides: `key=value` config overrides, applied last, e.g. `rounds=2`, `search.n=16`,
            `learn.algorithm=dpo`, `prm.enabled=true` (see `searchlearn config <variant>`).
        experiment_file: Path to your own experiment YAML, run instead of `experiment`; it may start
            from a variant with `inherit: <name>`. Relative paths start at the project root.
    """
    source, overrides = experiment_source(experiment, experiment_file), list(overrides or [])
    cfg = load_config(source, overrides)
    preflight(cfg)
    tags = links.flow_run_tags(links.cli_command("run", source, *overrides), overrides)
    with claim(cfg.run_dir) as run_dir, \
            tracking.parent_run(cfg, run_name=_run_name(cfg), tags=tags) as mlflow_run:
        history = recipe(cfg, run_dir, mlflow_run)
        _finish(mlflow_run, cfg, history)
    return history


def recipe(cfg, run_dir: str, mlflow_run: dict) -> list[dict]:
    stage = partial(run, run_dir=run_dir)
    round_run = tracking.start_round_run(mlflow_run, 0)  # round 0, the initial policy, includes its making
    problems = stage(problems_stage(cfg))
    base = stage(base_model_stage(cfg, problems))
    policy = init = stage(sft_stage(cfg, base, problems))
    eval_sets = {"eval": problems, **{f"eval.{name}": stage(eval_file_stage(path))
                                      for name, path in map(eval_set, cfg.eval.extra_sets)}}
    scores = evaluate(cfg, policy, eval_sets, 0, run_dir)
    history = [_record(0, *scores.values())]
    tracking.log_round(mlflow_run, round_run, 0, history[-1], {"policy": policy, **scores}, eval_sets)
    reward_models, labels, searches = {}, [], []
    with fanout(section(cfg.execution)) as fan:  # search and labelling fan out over problem shards
        for r in range(1, cfg.rounds + 1):
            started, round_run = time.perf_counter(), tracking.start_round_run(mlflow_run, r)
            scorer = reward_models.get(cfg.prm.kind)  # last round's: none in round 1
            searched = search_for_data(fan, cfg, policy, problems, scorer, r, run_dir)
            searches.append(searched)
            refs = {"search": searched}
            if cfg.prm.enabled:
                labels.append(label_steps(fan, cfg, policy, searched, r, run_dir))
                reward_models = retrain_reward_models(cfg, policy, labels, reward_models, r, run_dir)
                refs.update(labels=labels[-1], **reward_models)
            start = init if cfg.learn.init_from == "init" else policy
            policy = stage(learn_stage(cfg, start, policy, searches, shaping(cfg, reward_models), r))
            refs["policy"] = policy
            scores = evaluate(cfg, policy, eval_sets, r, run_dir)
            if reward_models:
                refs["rerank"] = stage(rerank_stage(cfg, policy, problems, reward_models, r))
            if cfg.eval.scaling.enabled:
                refs["scaling"] = stage(scaling_stage(cfg, policy, problems, reward_models.get(cfg.prm.kind), r))
            history.append(_record(r, *scores.values(), *refs.values(), seconds=time.perf_counter() - started,
                                   previous=history[-1]))
            tracking.log_round(mlflow_run, round_run, r, history[-1], {**refs, **scores}, eval_sets)
    return history


def evaluate(cfg, policy: dict, eval_sets: dict[str, dict], r: int, run_dir: str) -> dict[str, dict]:
    """The round's policy on each eval set: `eval` (the held-out split), then each
    extra set `eval.<name>` (its metrics are eval.<name>.*)."""
    return {name: run(eval_stage(cfg, policy, data, r, name.partition(".")[2]), run_dir)
            for name, data in eval_sets.items()}


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
    """The run's story: plots, the summary table, the champion, and a report in both UIs."""
    best = best_round(history)
    plots = tracking.log_plots(mlflow_run, history, champion=best)
    tracking.log_table(mlflow_run, history, "summary.json")
    champion = _crown(mlflow_run, cfg, history, best) if cfg.tracking.log_final_model else ""
    _report(mlflow_run, cfg, history, champion, plots)


def _crown(mlflow_run: dict, cfg, history: list[dict], best: int) -> str:
    """Log and register the best round's policy as the champion; its report section."""
    policy = Path(registry.round_policy(mlflow_run, best)) / "model"
    return registry.crown_champion(mlflow_run, cfg, history, best, str(policy), _run_name(cfg))


def _report(mlflow_run: dict, cfg, history: list[dict], champion: str, plots: list[str]) -> None:
    """One report, twice: the MLflow run's description (with its plots) and the flow
    run's Prefect artifact (with the link to the MLflow run)."""
    title = f"{cfg.name}: search and learn, run {_run_name(cfg)}"
    images = [(Path(p).stem.replace("_", " "), tracking.artifact_url(mlflow_run, p)) for p in plots]
    tracking.log_report(mlflow_run, run_report(title, history, champion=champion, images=images))
    url = tracking.run_url(mlflow_run)
    links.publish_summary(cfg.name, run_report(title, history, champion=champion, links=[
        ("MLflow run", url), ("open this store with", f"`{tracking.ui_command(mlflow_run)}`")]))
    get_run_logger().info("\n%s\nMLflow run: %s", render_summary(history, title), url)


def _run_name(cfg) -> str:
    try:
        from prefect.runtime import flow_run

        return f"{cfg.name}-{flow_run.name}"
    except Exception:  # outside a flow run (should not happen): still name it
        return cfg.name
