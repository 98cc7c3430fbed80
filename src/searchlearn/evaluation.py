"""Held-out evaluation: greedy accuracy, maj@k, pass@k, tokens spent.

Every accuracy comes with its standard error over problems (`<metric>_se`, the
sample standard deviation of the per-problem scores over sqrt(n)), so a
difference can be read against its noise. Metric names spell @ as _at_ (maj_at_8)
because MLflow rejects @ in metric names."""

from __future__ import annotations

import math
import time
from typing import Callable, Sequence

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


def sample_pools(
    problems: Sequence[Problem], generator: Generator, n: int, temperature: float, max_new_tokens: int,
) -> list[list]:
    """`n` sampled solutions per problem, each checked against its reference: the
    pools that best-of-N selectors choose from (`rerank_curve`)."""
    outs = generator.generate([build_prompt(p.question) for p in problems],
                              SamplingParams(n=n, temperature=temperature, max_new_tokens=max_new_tokens))
    return [[make_candidate(p, o.text, o.num_tokens) for o in group] for p, group in zip(problems, outs)]


def selector_names(kind: str, aggregations: Sequence[str]) -> dict[str, str]:
    """A reward model's best-of-N selectors, name -> aggregation: a process model by
    its weakest and its last step (`prm_min`, `prm_last`), an outcome model by its
    last (`orm`)."""
    return {f"{kind}_{how}" if len(aggregations) > 1 else kind: how for how in aggregations}


def rerank_curve(
    problems: Sequence[Problem], pools: Sequence[Sequence], models: dict[str, Callable[[], object]],
    ns: Sequence[int], seed: int = 0, release: Callable[[], None] | None = None,
) -> tuple[dict, list[dict], list[dict], list[dict]]:
    """Best-of-N accuracy at each N for several selectors, from one pool per problem
    (`sample_pools`, of size max(ns)).

    `models` maps a reward-model kind to a loader of its StepScorer. One model is in
    memory at a time: each is loaded, scores every candidate in one batched call, and
    is dropped (then `release()` runs, to hand its memory back) before the next loads;
    two SmolLM2 scorers plus a policy did not fit 24 GiB beside each other. Its
    selectors (`selector_names`) each select twice: the best-scored candidate
    (`<name>`) and the answer with the largest summed score (`<name>_weighted`,
    weighted best-of-N). The first N candidates of a pool form its pool at size N, so
    every method sees the same candidates. Majority vote and a seeded random choice
    are always included.

    Returns (metrics, table, records, candidates): `<method>.n<N>` accuracies with
    their standard errors (`_se`); each selector's `<name>.candidate_auc` (right
    answers above wrong ones within a problem); and where the problems carry reference
    equations, each reward model's step AUC against the exact oracle over every step of
    every candidate (`<first selector name>.step_auc_oracle`), the same within a
    problem and step position (`..._matched`), and a content-blind position-only
    scorer's (`position_baseline.step_auc_oracle`); the table has one row per N;
    the records one per problem, each method's 0/1 outcome at each N, so methods can be
    compared paired, problem by problem; the candidates one per problem too, every
    candidate's answer, correctness, tokens, steps, oracle verdicts and each model's
    step scores (`candidate_rows`), so a selector can be studied without sampling and
    scoring again.
    """
    import random

    from searchlearn.reward.base import aggregate
    from searchlearn.search.selection import select_best, select_weighted

    start = time.perf_counter()
    steps = [[split_steps(c.text) or [""] for c in pool] for pool in pools]  # split once for every model
    oracle_rows = _oracle_rows(problems, steps)  # checked once, for every model
    selectors: dict[str, tuple[list, str]] = {}  # name -> (its model's step scores, aggregation)
    by_model: dict[str, list] = {}  # each model's first selector name -> its step scores
    metrics: dict = {}
    for kind, load in models.items():
        scorer = load()
        names = selector_names(kind, scorer.aggregations)
        scores = _score_pools(problems, steps, scorer)
        del scorer  # the loader's caller keeps no reference: the model is garbage now
        if release is not None:
            release()
        metrics.update(_oracle_auc(oracle_rows, scores, f"{next(iter(names))}."))
        for name, how in names.items():
            metrics.update(_candidate_auc(pools, scores, how, f"{name}."))
        selectors.update({name: (scores, how) for name, how in names.items()})
        by_model[next(iter(names))] = scores
    metrics.update(_oracle_auc_differences(oracle_rows, by_model))
    if by_model:
        metrics.update(_position_baseline(oracle_rows))
    rng = random.Random(seed)
    records = [{"id": p.id, **{f"n{n}": {} for n in ns}} for p in problems]
    for n in ns:
        for i, pool in enumerate(pools):
            cands, outcome = pool[:n], records[i][f"n{n}"]
            outcome["majority"] = int(bool(cands[select_majority(cands)].correct))
            outcome["random"] = int(bool(rng.choice(cands).correct))
            for name, (scores, how) in selectors.items():
                for c, s in zip(cands, scores[i]):
                    c.score = aggregate(s, how)
                outcome[name] = int(bool(cands[select_best(cands)].correct))
                outcome[f"{name}_weighted"] = int(bool(cands[select_weighted(cands)].correct))
    methods = ["majority", "random", *[m for name in selectors for m in (name, f"{name}_weighted")]]
    table = [{"n": n, **{m: _mean(r[f"n{n}"][m] for r in records) for m in methods}} for n in ns]
    for n in ns:
        for m in methods:
            metrics.update(with_se(f"{m}.n{n}", [r[f"n{n}"][m] for r in records]))
    metrics.update(tokens=sum(c.num_tokens for pool in pools for c in pool),
                   score_seconds=round(time.perf_counter() - start, 2))
    return metrics, table, records, candidate_rows(problems, pools, steps, oracle_rows, by_model)


def candidate_rows(problems, pools, steps, oracle_rows, by_model: dict[str, list]) -> list[dict]:
    """Per problem, every candidate as the selectors saw it: answer, correctness,
    tokens, its steps, the oracle's verdict per step (where the problem has one) and
    each reward model's step scores (by its first selector name)."""
    rows = []
    for i, (p, pool) in enumerate(zip(problems, pools)):
        cands = []
        for j, c in enumerate(pool):
            row = {"answer": c.answer, "correct": c.correct, "tokens": c.num_tokens, "steps": steps[i][j],
                   "scores": {name: scores[i][j] for name, scores in by_model.items()}}
            if "oracle" in oracle_rows[i][j]:
                row["oracle"] = oracle_rows[i][j]["oracle"]
            cands.append(row)
        rows.append({"id": p.id, "reference": p.answer, "candidates": cands})
    return rows


def _oracle_rows(problems, steps) -> list[list[dict]]:
    """Per problem, a row per candidate carrying the exact oracle's verdict on each of
    its steps (`oracle`), where the problem has reference equations."""
    from searchlearn.reward.labels import with_oracle

    by_id = {p.id: p for p in problems}
    return [with_oracle([{"problem_id": p.id, "steps": s} for s in pool], by_id) for p, pool in zip(problems, steps)]


def _oracle_auc(oracle_rows, scores, prefix: str) -> dict:
    """A reward model's step AUC (and agreement at 0.5) against the exact step
    oracle, over every step of every candidate whose problem has reference
    equations, with a 95 % bootstrap interval over problems (`_lo`, `_hi`), and the
    same within a problem and step position (`_matched`); empty where no problem
    has them."""
    from searchlearn.reward.quality import stratified_auc

    found = _pooled_oracle_auc(oracle_rows, scores, prefix)
    if not found:
        return {}
    matched = stratified_auc([_by_position(rows, pool_scores) for rows, pool_scores in zip(oracle_rows, scores)])
    return {**found, **{f"{prefix}step_auc_oracle_matched{suffix}": matched[key]
                        for key, suffix in (("auc", ""), ("lo", "_lo"), ("hi", "_hi"), ("pairs", "_pairs"))}}


def _pooled_oracle_auc(oracle_rows, scores, prefix: str) -> dict:
    """`_oracle_auc` without the matched AUC: every step pooled."""
    from searchlearn.reward.quality import agreement, clustered_auc_interval, oracle_pairs

    # each problem's (score, verdict) pairs: the bootstrap resamples problems
    groups = [oracle_pairs(rows, pool_scores) for rows, pool_scores in zip(oracle_rows, scores)]
    found = agreement([pair for g in groups for pair in g], "")
    if not found:
        return {}
    lo, hi = clustered_auc_interval([g for g in groups if g])
    return {f"{prefix}step_auc_oracle": found["auc"], f"{prefix}step_auc_oracle_lo": lo,
            f"{prefix}step_auc_oracle_hi": hi, f"{prefix}step_agreement_oracle": found["agreement"],
            f"{prefix}oracle_steps": found["steps"], f"{prefix}oracle_positive_rate": found["positive_rate"]}


def _by_position(rows: list[dict], pool_scores: list) -> list[list[tuple[float, bool]]]:
    """One problem's (score, oracle verdict) pairs, a stratum per step position: step
    k of each candidate is compared with step k of the others only (`stratified_auc`)."""
    strata: dict[int, list] = {}
    for row, values in zip(rows, pool_scores):
        for k, (v, t) in enumerate(zip(values, row.get("oracle") or [])):
            if v is not None:
                strata.setdefault(k, []).append((v, t >= 0.5))
    return list(strata.values())


def _position_baseline(oracle_rows) -> dict:
    """A content-blind scorer's pooled step AUC against the oracle: each step valued by
    its position alone (1/(k+1): earlier is better). What a reward model's pooled step
    AUC is to be read against: a chain that goes wrong stays wrong, so late steps are
    wrong more often whatever they say."""
    scores = [[[1 / (k + 1) for k in range(len(r.get("oracle") or []))] for r in rows] for rows in oracle_rows]
    found = _pooled_oracle_auc(oracle_rows, scores, "position_baseline.")  # matched: 0.5 by construction
    return {k: found[k] for k in ("position_baseline.step_auc_oracle", "position_baseline.step_auc_oracle_lo",
                                  "position_baseline.step_auc_oracle_hi") if k in found}


def _candidate_auc(pools, scores, how: str, prefix: str) -> dict:
    """How well a selector's aggregated score ranks a problem's right answers above its
    wrong ones, among the problem's answered candidates only (`<name>.candidate_auc`,
    with a 95 % interval over problems and its pair count): what best-of-N needs, and
    what no pooled measure shows. Needs only the reference answers."""
    from searchlearn.reward.base import aggregate
    from searchlearn.reward.quality import stratified_auc

    problems = [[[(aggregate(s, how), bool(c.correct)) for c, s in zip(pool, pool_scores) if c.answer is not None]]
                for pool, pool_scores in zip(pools, scores)]
    found = stratified_auc(problems)
    return {f"{prefix}candidate_auc": found["auc"], f"{prefix}candidate_auc_lo": found["lo"],
            f"{prefix}candidate_auc_hi": found["hi"], f"{prefix}candidate_auc_pairs": found["pairs"]}


def _oracle_auc_differences(oracle_rows, by_model: dict[str, list]) -> dict:
    """For each pair of reward models (later minus earlier, in `by_model`'s order): the
    difference of their step AUCs against the oracle on the steps both scored, with a
    paired 95 % bootstrap interval over problems (`<a>.step_auc_oracle_minus_<b>`,
    `_lo`, `_hi`). Two models' AUCs on the same steps are correlated, so whether their
    separate intervals overlap says little; this says whether one ranks better."""
    from itertools import combinations

    from searchlearn.reward.quality import oracle_pairs, paired_auc_difference

    def both(values_a, values_b):  # a step counts where both models scored it
        return [None if x is None or y is None else (x, y) for x, y in zip(values_a, values_b)]

    out = {}
    for b, a in combinations(by_model, 2):
        groups = [[(x, y, truth) for (x, y), truth in oracle_pairs(rows, [both(*s) for s in zip(scores_a, scores_b)])]
                  for rows, scores_a, scores_b in zip(oracle_rows, by_model[a], by_model[b])]
        if any(groups):
            diff, lo, hi = paired_auc_difference([g for g in groups if g])
            out.update({f"{a}.step_auc_oracle_minus_{b}": diff, f"{a}.step_auc_oracle_minus_{b}_lo": lo,
                        f"{a}.step_auc_oracle_minus_{b}_hi": hi})
    return out


def _score_pools(problems, steps, scorer) -> list[list[list[float]]]:
    """One batched scorer call over every candidate of every problem (`steps`: each
    candidate's step list, pool by pool)."""
    flat = [(p.question, s) for p, pool in zip(problems, steps) for s in pool]
    scores = iter(scorer.score([q for q, _ in flat], [s for _, s in flat]))
    return [[next(scores) for _ in pool] for pool in steps]
