"""Held-out evaluation: greedy accuracy, maj@k, pass@k, tokens spent.

Every accuracy comes with its standard error over problems (`<metric>_se`, the
sample standard deviation of the per-problem scores over sqrt(n)), so a
difference can be read against its noise. Metric names spell @ as _at_ (maj_at_8)
because MLflow rejects @ in metric names."""

from __future__ import annotations

import math
import time
from typing import Sequence

from searchlearn.formatting import build_prompt, split_steps
from searchlearn.generation.base import Generator, SamplingParams
from searchlearn.problems.base import Problem
from searchlearn.search.best_of_n import make_candidate
from searchlearn.search.selection import select_majority


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct (Chen et al., 2021)."""
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def evaluate(
    problems: Sequence[Problem], generator: Generator, k: int, temperature: float, max_new_tokens: int
) -> tuple[dict, list[dict]]:
    """Returns (metrics, per-problem records)."""
    start = time.perf_counter()
    prompts = [build_prompt(p.question) for p in problems]
    greedy = generator.generate(prompts, SamplingParams(n=1, temperature=0.0, max_new_tokens=max_new_tokens))
    records = []
    tokens = 0
    for p, outs in zip(problems, greedy):
        cand = make_candidate(p, outs[0].text, outs[0].num_tokens)
        tokens += cand.num_tokens
        records.append({"id": p.id, "reference": p.answer, "greedy": cand.text, "greedy_answer": cand.answer,
                        "greedy_correct": cand.correct})
    metrics = with_se("greedy_acc", [r["greedy_correct"] for r in records])
    if k > 0:
        params = SamplingParams(n=k, temperature=temperature, max_new_tokens=max_new_tokens)
        sampled = generator.generate(prompts, params)
        for p, outs, rec in zip(problems, sampled, records):
            cands = [make_candidate(p, o.text, o.num_tokens) for o in outs]
            tokens += sum(c.num_tokens for c in cands)
            vote = cands[select_majority(cands)]
            n_correct = sum(bool(c.correct) for c in cands)
            rec.update(maj_answer=vote.answer, maj_correct=bool(vote.correct), n_correct=n_correct)
        metrics.update(with_se(f"maj_at_{k}", [r["maj_correct"] for r in records]))
        metrics.update(with_se(f"pass_at_{k}", [pass_at_k(k, r["n_correct"], k) for r in records]))
        metrics.update(with_se("pass_at_1_sampled", [pass_at_k(k, r["n_correct"], 1) for r in records]))
    metrics.update(problems=len(problems), tokens=tokens, seconds=round(time.perf_counter() - start, 2))
    return metrics, records


def _mean(values) -> float:
    values = [float(v) for v in values]
    return sum(values) / len(values) if values else 0.0


def standard_error(values: Sequence[float]) -> float:
    """Standard error of the mean of per-problem scores (0 for fewer than two)."""
    values = [float(v) for v in values]
    n = len(values)
    if n < 2:
        return 0.0
    mean = sum(values) / n
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n)


def with_se(name: str, values: Sequence[float]) -> dict:
    """{name: mean, name_se: its standard error}."""
    return {name: _mean(values), f"{name}_se": standard_error(values)}


def rerank_curve(
    problems: Sequence[Problem], generator: Generator, scorers: dict, ns: Sequence[int], temperature: float,
    max_new_tokens: int, seed: int = 0,
) -> tuple[dict, list[dict], list[dict]]:
    """Best-of-N accuracy at each N for several selectors, from one set of samples.

    `scorers` maps a method name to (StepScorer, aggregation), e.g.
    {"prm_min": (prm, "min"), "prm_last": (prm, "last"), "orm": (orm, "last")}.
    The first N of max(ns) samples form each problem's pool at size N, so every
    method sees the same candidates. Each scorer selects twice: its best-scored
    candidate (`<method>`) and the answer with the largest summed score
    (`<method>_weighted`, weighted best-of-N). Majority vote and a seeded random
    choice are always included.

    Returns (metrics, table, records): `<method>.n<N>` accuracies with their standard
    errors (`_se`), and where the problems carry reference equations, each reward
    model's step AUC against the exact oracle over every step of every candidate
    (`<method>.step_auc_oracle`, under the first method name that uses the model);
    the table has one row per N; the records one per problem, each method's 0/1
    outcome at each N, so methods can be compared paired, problem by problem.
    """
    import random

    from searchlearn.reward.base import aggregate
    from searchlearn.search.selection import select_best, select_weighted

    start = time.perf_counter()
    big = max(ns)
    outs = generator.generate([build_prompt(p.question) for p in problems],
                              SamplingParams(n=big, temperature=temperature, max_new_tokens=max_new_tokens))
    pools = [[make_candidate(p, o.text, o.num_tokens) for o in group] for p, group in zip(problems, outs)]
    # PRM-min and PRM-last aggregate the same step scores: score with each model once.
    steps = [[split_steps(c.text) or [""] for c in pool] for pool in pools]  # split once for every model
    by_model: dict[int, list] = {}
    metrics: dict = {}
    for name, (scorer, _) in scorers.items():
        if id(scorer) not in by_model:
            by_model[id(scorer)] = _score_pools(problems, steps, scorer)
            metrics.update(_oracle_auc(problems, steps, by_model[id(scorer)], f"{name}."))
    step_scores = {name: by_model[id(scorer)] for name, (scorer, _) in scorers.items()}
    rng = random.Random(seed)
    records = [{"id": p.id, **{f"n{n}": {} for n in ns}} for p in problems]
    for n in ns:
        for i, pool in enumerate(pools):
            cands, outcome = pool[:n], records[i][f"n{n}"]
            outcome["majority"] = int(bool(cands[select_majority(cands)].correct))
            outcome["random"] = int(bool(rng.choice(cands).correct))
            for name, (_, how) in scorers.items():
                for c, s in zip(cands, step_scores[name][i]):
                    c.score = aggregate(s, how)
                outcome[name] = int(bool(cands[select_best(cands)].correct))
                outcome[f"{name}_weighted"] = int(bool(cands[select_weighted(cands)].correct))
    methods = ["majority", "random", *[m for name in scorers for m in (name, f"{name}_weighted")]]
    table = [{"n": n, **{m: _mean(r[f"n{n}"][m] for r in records) for m in methods}} for n in ns]
    for n in ns:
        for m in methods:
            metrics.update(with_se(f"{m}.n{n}", [r[f"n{n}"][m] for r in records]))
    metrics.update(tokens=sum(c.num_tokens for pool in pools for c in pool),
                   seconds=round(time.perf_counter() - start, 2))
    return metrics, table, records


def _oracle_auc(problems, steps, scores, prefix: str) -> dict:
    """A reward model's step AUC (and agreement at 0.5) against the exact step
    oracle, over every step of every candidate whose problem has reference
    equations; empty where none has."""
    from searchlearn.reward.labels import with_oracle
    from searchlearn.reward.quality import agreement, oracle_pairs

    by_id = {p.id: p for p in problems}
    rows = [{"problem_id": p.id, "steps": s} for p, pool in zip(problems, steps) for s in pool]
    flat = [s for pool_scores in scores for s in pool_scores]
    found = agreement(oracle_pairs(with_oracle(rows, by_id), flat), "")
    if not found:
        return {}
    return {f"{prefix}step_auc_oracle": found["auc"], f"{prefix}step_agreement_oracle": found["agreement"],
            f"{prefix}oracle_steps": found["steps"], f"{prefix}oracle_positive_rate": found["positive_rate"]}


def _score_pools(problems, steps, scorer) -> list[list[list[float]]]:
    """One batched scorer call over every candidate of every problem (`steps`: each
    candidate's step list, pool by pool)."""
    flat = [(p.question, s) for p, pool in zip(problems, steps) for s in pool]
    scores = iter(scorer.score([q for q, _ in flat], [s for _, s in flat]))
    return [[next(scores) for _ in pool] for pool in steps]
