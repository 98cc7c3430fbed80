"""Stage: evaluate a policy on the held-out split."""

from __future__ import annotations

import functools
import time
from pathlib import Path

from searchlearn.artifacts import write_jsonl
from searchlearn.search.scaling import TREE_SEARCHES
from searchlearn.sharding import block_seed
from searchlearn.stages.common import STAGE_SEEDS, load_scorer_ref, log, produce, section, stage_generator
from searchlearn.stages.data import test_problems
from searchlearn.stages.stage import Stage, path_of, scorer_ref_of

# The search settings the scaling comparison reads: sampling, and every tree
# algorithm's own section (it runs them all), not the data-generation ones.
SCALING_SEARCH_KEYS = ("temperature", "top_p", "max_new_tokens", "max_step_tokens", "max_steps", "aggregation",
                       *TREE_SEARCHES)


def eval_config(cfg) -> dict:
    """`eval:` without the scaling comparison, a stage of its own: tuning it must not
    re-run the plain evaluation."""
    return {k: v for k, v in section(cfg.eval).items() if k != "scaling"}


def scaling_search(cfg) -> dict:
    return {k: v for k, v in section(cfg.search).items() if k in SCALING_SEARCH_KEYS}


def eval_stage(cfg, policy: dict, problems: dict, round_index: int, name: str = "") -> Stage:
    """evaluate-policy: held-out greedy, maj@k, pass@k of one round's policy; with a
    `name`, the same on that extra eval set (its metrics are eval.<name>.*)."""
    task, out = (f"evaluate-{name}", f"eval-{name}") if name else ("evaluate-policy", "eval")
    eval_cfg = {**eval_config(cfg), "num_problems": 0} if name else eval_config(cfg)  # an extra set: all of it
    return Stage(task, out, evaluate_policy,
                 {"policy_dir": path_of(policy, "model"), "data_dir": path_of(problems), "eval_cfg": eval_cfg,
                  "gen_cfg": section(cfg.generation), "seed": cfg.seed, "prefix": f"eval.{name}." if name else "eval."},
                 round=round_index)


def rerank_stage(cfg, policy: dict, problems: dict, scorers: dict[str, dict], round_index: int) -> Stage:
    """evaluate-reranking: best-of-N with every reward model trained this round."""
    return Stage("evaluate-reranking", "rerank", evaluate_reranking,
                 {"policy_dir": path_of(policy, "model"), "data_dir": path_of(problems),
                  "scorer_refs": {kind: scorer_ref_of(ref, cfg.prm.step_check) for kind, ref in scorers.items()},
                  "prm_cfg": section(cfg.prm),
                  "eval_cfg": eval_config(cfg), "gen_cfg": section(cfg.generation), "seed": cfg.seed},
                 round=round_index)


def scaling_stage(cfg, policy: dict, problems: dict, scorer: dict | None, round_index: int) -> Stage:
    """evaluate-scaling: every search method at every budget, accuracy vs tokens."""
    return Stage("evaluate-scaling", "scaling", evaluate_scaling,
                 {"policy_dir": path_of(policy, "model"), "data_dir": path_of(problems),
                  "scorer_ref": scorer_ref_of(scorer, cfg.prm.step_check),
                  "scaling_cfg": section(cfg.eval.scaling), "search_cfg": scaling_search(cfg),
                  "eval_cfg": eval_config(cfg), "gen_cfg": section(cfg.generation), "seed": cfg.seed},
                 round=round_index)


def evaluate_policy(policy_dir: str, data_dir: str, eval_cfg: dict, gen_cfg: dict, seed: int,
                    out_dir: str | Path, prefix: str = "eval.") -> dict:
    from searchlearn.evaluation import evaluate

    def build(tmp: Path) -> dict:
        problems = test_problems(data_dir, eval_cfg["num_problems"])
        # One eval seed for every round: rounds are compared on common random numbers.
        with stage_generator(policy_dir, gen_cfg, seed, "eval") as generator:
            metrics, records = evaluate(
                problems, generator, eval_cfg["k"], eval_cfg["temperature"], eval_cfg["max_new_tokens"]
            )
        write_jsonl(tmp / "records.jsonl", records)
        return {f"{prefix}{k}": v for k, v in metrics.items()}

    return produce(out_dir, build)


def evaluate_reranking(policy_dir: str, data_dir: str, scorer_refs: dict[str, dict], prm_cfg: dict,
                       eval_cfg: dict, gen_cfg: dict, seed: int, out_dir: str | Path) -> dict:
    """Best-of-N at N in prm.rerank_n with every trained reward model (a process model
    by its weakest and its last step: `prm_min`, `prm_last`; an outcome model by its
    last: `orm`), majority and random. The reward models load one at a time, after
    the samples are drawn (evaluation.rerank_curve)."""
    from searchlearn.evaluation import rerank_curve, sample_pools
    from searchlearn.memory import release_heap

    def build(tmp: Path) -> dict:
        start = time.perf_counter()
        problems = test_problems(data_dir, prm_cfg["rerank_problems"] or eval_cfg["num_problems"])
        with stage_generator(policy_dir, gen_cfg, seed, "rerank") as generator:
            pools = sample_pools(problems, generator, max(prm_cfg["rerank_n"]), eval_cfg["temperature"],
                                 eval_cfg["max_new_tokens"])
        models = {kind: functools.partial(load_scorer_ref, ref, kind) for kind, ref in scorer_refs.items()}
        metrics, table, records, candidates = rerank_curve(problems, pools, models, prm_cfg["rerank_n"], seed,
                                                           release=release_heap)
        write_jsonl(tmp / "rerank_table.jsonl", table)
        write_jsonl(tmp / "records.jsonl", records)  # per problem, for paired comparisons
        write_jsonl(tmp / "candidates.jsonl", candidates)  # every candidate and its scores, for selector studies
        metrics["seconds"] = round(time.perf_counter() - start, 2)
        return {f"rerank.{k}": v for k, v in metrics.items()}

    return produce(out_dir, build)


def evaluate_scaling(policy_dir: str, data_dir: str, scorer_ref: dict | None, scaling_cfg: dict, search_cfg: dict,
                     eval_cfg: dict, gen_cfg: dict, seed: int, out_dir: str | Path) -> dict:
    """Every search method at every budget on the same held-out problems: accuracy
    against generated tokens (searchlearn.search.scaling). Scorer-guided methods
    are skipped until a reward model exists."""
    from searchlearn.search.scaling import scaling_curve, summary_metrics

    def build(tmp: Path) -> dict:
        problems = test_problems(data_dir, scaling_cfg["num_problems"] or eval_cfg["num_problems"])
        scorer = load_scorer_ref(scorer_ref)
        with stage_generator(policy_dir, gen_cfg, seed, "scaling") as generator:
            # One seed per cell, the same every round: rounds compare on common random numbers.
            reseed = lambda cell: generator.reseed(block_seed(seed, 0, STAGE_SEEDS["scaling"], cell))  # noqa: E731
            rows = scaling_curve(problems, generator, scorer, scaling_cfg["methods"], scaling_cfg["budgets"],
                                 search_cfg, reseed=reseed, progress=log.info)
        write_jsonl(tmp / "scaling_table.jsonl", rows)
        return {**summary_metrics(rows), "scaling.tokens": sum(r["tokens"] for r in rows)}

    return produce(out_dir, build)
