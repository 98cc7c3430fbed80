"""Stage: search for solutions to one round's training problems with the current
policy (and scorer, if any), verifying every candidate."""

from __future__ import annotations

import time
from pathlib import Path

from searchlearn.artifacts import write_jsonl
from searchlearn.problems.base import write_problems
from searchlearn.search import ALGORITHMS, SearchBudget
from searchlearn.stages.common import load_scorer_ref, log, produce, stage_generator
from searchlearn.stages.data import round_problems


def needs_scorer(search_cfg: dict) -> bool:
    name = search_cfg["algorithm"]
    if name == "best_of_n":
        return search_cfg["selection"] in ("weighted", "best")
    return not (name == "mcts" and search_cfg["mcts"]["evaluation"] == "rollout")


def build_algorithm(search_cfg: dict, has_scorer: bool = True):
    """Config -> algorithm instance. Best-of-N reads the top-level selection keys;
    tree searches read their own section (search.<algorithm>). Before the first
    reward model exists (round 1), a scorer-guided search falls back to best-of-N
    with majority vote: there is nothing to guide it yet."""
    name = search_cfg["algorithm"]
    if needs_scorer(search_cfg) and not has_scorer:
        log.info("no reward model yet: %s falls back to best_of_n (majority) this round", name)
        return ALGORITHMS["best_of_n"](selection="majority")
    if name == "best_of_n":
        return ALGORITHMS[name](selection=search_cfg["selection"], aggregation=search_cfg.get("aggregation", "min"))
    return ALGORITHMS[name](**(search_cfg.get(name) or {}))


def budget_from(search_cfg: dict) -> SearchBudget:
    keys = ("n", "temperature", "top_p", "max_new_tokens", "max_step_tokens", "max_steps")
    return SearchBudget(**{k: search_cfg[k] for k in keys})


def search_round(
    policy_dir: str, data_dir: str, search_cfg: dict, gen_cfg: dict, scorer_ref: dict | None,
    seed: int, round_index: int, out_dir: str | Path,
) -> dict:
    def build(tmp: Path) -> dict:
        problems = round_problems(data_dir, search_cfg["problems_per_round"], seed * 1000 + round_index)
        generator = stage_generator(policy_dir, gen_cfg, seed, "search", round_index)
        start = time.perf_counter()
        scorer = load_scorer_ref(scorer_ref)
        algorithm = build_algorithm(search_cfg, has_scorer=scorer is not None)
        results = algorithm.search(problems, generator, scorer, budget_from(search_cfg))
        seconds = time.perf_counter() - start
        write_problems(tmp / "problems.jsonl", problems)
        write_jsonl(tmp / "results.jsonl", (r.to_dict() for r in results))
        return {**search_stats(results, seconds), "search.algorithm": algorithm.name}

    return produce(out_dir, build)


def search_stats(results, seconds: float) -> dict:
    n = max(len(results), 1)
    cands = [c for r in results for c in r.candidates]
    tokens = sum(r.tokens for r in results)
    return {
        "search.problems": len(results),
        "search.solved": sum(r.solved for r in results) / n,
        "search.any_correct": sum(any(c.correct for c in r.candidates) for r in results) / n,
        "search.candidate_acc": sum(bool(c.correct) for c in cands) / max(len(cands), 1),
        "search.tokens": tokens,
        "search.seconds": round(seconds, 2),
        "search.tokens_per_s": round(tokens / seconds, 1) if seconds > 0 else 0.0,
    }
