"""Compute-matched comparison: every search method on the same held-out problems at
budgets of 2^1..2^5 samples' worth, recording accuracy against the tokens each
really generated (the test-time compute scaling curve).

A method is an algorithm plus its settings. Best-of-N comes as majority vote and
as PRM-weighted vote; tree searches take their settings from the experiment's
`search.<algorithm>` section. The verifier never guides test-time search here
(MCTS's `use_verifier` is forced off): only the final pick is checked.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

from searchlearn.generation.base import Generator
from searchlearn.problems.base import Problem
from searchlearn.reward.base import StepScorer
from searchlearn.search import ALGORITHMS, BestOfN
from searchlearn.search.base import SearchAlgorithm, SearchBudget


@dataclass(frozen=True)
class Method:
    label: str
    algorithm: SearchAlgorithm


TREE_SEARCHES = ("beam_search", "dvts", "mcts")


def methods(names: Sequence[str], search_cfg: dict) -> list[Method]:
    """Methods by name: bon_majority, bon_weighted, beam_search, dvts, mcts. Each
    algorithm reads its own settings from `search_cfg` (the `search:` section)."""
    unknown = [n for n in names if n not in ("bon_majority", "bon_weighted", *TREE_SEARCHES)]
    if unknown:
        raise ValueError(f"unknown scaling method(s) {unknown}; choose from "
                         f"{sorted(('bon_majority', 'bon_weighted', *TREE_SEARCHES))}")
    out = []
    for name in names:
        if name == "bon_majority":
            algorithm = BestOfN(selection="majority")
        elif name == "bon_weighted":
            algorithm = BestOfN(selection="weighted", aggregation=search_cfg.get("aggregation", "min"))
        elif name == "mcts":  # test-time search never sees the reference answer
            algorithm = ALGORITHMS[name].from_config({name: {**search_cfg.get(name, {}), "use_verifier": False}})
        else:
            algorithm = ALGORITHMS[name].from_config(search_cfg)
        out.append(Method(name, algorithm))
    return out


def scaling_curve(
    problems: Sequence[Problem], generator: Generator, scorer: StepScorer | None, names: Sequence[str],
    budgets: Sequence[int], search_cfg: dict, reseed: Callable[[int], None] | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[dict]:
    """One row per (method, budget) that can run: accuracy, tokens per problem,
    seconds and tokens/s. Each cell reseeds (when `reseed` is given) so a cell's
    samples do not depend on which cells ran before it."""
    rows = []
    for i, method in enumerate(methods(names, search_cfg)):
        if method.algorithm.needs_scorer and scorer is None:
            continue
        for j, n in enumerate(budgets):
            budget = SearchBudget.from_config(search_cfg, n)
            if not method.algorithm.fits(budget):
                continue
            if reseed is not None:
                reseed(i * 1000 + j)
            before, gen_before, start = generator.stats.tokens, generator.stats.seconds, time.perf_counter()
            results = method.algorithm.search(problems, generator, scorer, budget)
            seconds = time.perf_counter() - start
            tokens, gen_seconds = generator.stats.tokens - before, generator.stats.seconds - gen_before
            rows.append({
                "method": method.label, "n": n,
                "accuracy": sum(r.solved for r in results) / max(len(results), 1),
                "tokens_per_problem": tokens / max(len(results), 1),
                "tokens": tokens, "seconds": round(seconds, 3),
                "tokens_per_s": round(tokens / seconds, 1) if seconds > 0 else 0.0,
                # Throughput inside generate calls only: batching efficiency without the
                # scorer's cost (tokens_per_s includes scoring and bookkeeping).
                "generate_seconds": round(gen_seconds, 3),
                "gen_tokens_per_s": round(tokens / gen_seconds, 1) if gen_seconds > 0 else 0.0,
                # Per problem, so two methods run on the same problems compare paired.
                "solved": {r.problem_id: int(r.solved) for r in results},
            })
            if progress:
                progress(f"{method.label} n={n}: acc {rows[-1]['accuracy']:.3f}, "
                         f"{rows[-1]['tokens_per_problem']:.0f} tok/problem, {rows[-1]['tokens_per_s']:.0f} tok/s")
    return rows


def summary_metrics(rows: Sequence[dict]) -> dict:
    """Flat metrics for MLflow: scaling.<method>.n<N>.acc / .tokens, plus each
    method's throughput relative to majority-vote best-of-N at the same N."""
    out = {}
    bon = {r["n"]: r["tokens_per_s"] for r in rows if r["method"] == "bon_majority"}
    for r in rows:
        key = f"scaling.{r['method']}.n{r['n']}"
        out[f"{key}.acc"] = r["accuracy"]
        out[f"{key}.tokens"] = r["tokens_per_problem"]
        if bon.get(r["n"]):
            out[f"{key}.speed_vs_bon"] = round(r["tokens_per_s"] / bon[r["n"]], 3)
    return out
