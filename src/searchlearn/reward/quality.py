"""How good step labels and reward models are: AUC and agreement, against the labels
they were trained on and against the exact step oracle (reward/oracle.py).

Pure functions over labelled-step rows (reward/labels.py) and per-step scores, so
they are tested on hand-made numbers. A row may carry `oracle` (0/1 per step, the
oracle's verdict) beside its `labels` (Monte-Carlo soft or hard, the outcome, or
the oracle itself).
"""

from __future__ import annotations

from typing import Sequence

def rank_auc(scores: Sequence[float], positives: Sequence[bool]) -> float:
    """ROC AUC as the Mann-Whitney statistic (ties count half); NaN if a class is
    missing. O(n log n), no sklearn needed."""
    n_pos = sum(bool(p) for p in positives)
    n_neg = len(positives) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    rank_sum, i = 0.0, 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        mid_rank = (i + j) / 2 + 1  # tied scores share the average rank
        rank_sum += mid_rank * sum(bool(positives[order[k]]) for k in range(i, j + 1))
        i = j + 1
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def clustered_auc_interval(groups: Sequence[Sequence[tuple[float, bool]]], draws: int = 1000, seed: int = 0,
                           level: float = 0.95) -> tuple[float, float]:
    """A bootstrap interval for rank_auc over (value, truth) pairs that come in groups
    (a problem's steps): groups are resampled whole, since the steps of one problem
    are not independent. Each draw weights every pair by its group's multiplicity and
    takes the weighted Mann-Whitney statistic over tie levels ranked once, so a
    thousand draws over ten thousand steps take about a second. (nan, nan) if no
    draw has both classes."""
    import numpy as np

    truth = np.array([t for g in groups for _, t in g], dtype=bool)
    if not len(truth):
        return float("nan"), float("nan")
    levels, tie = np.unique(np.array([v for g in groups for v, _ in g], dtype=float), return_inverse=True)
    aucs = [weighted_auc(tie, truth, w, len(levels)) for w in group_weights([len(g) for g in groups], draws, seed)]
    return _quantiles(aucs, level)


def paired_auc_difference(groups: Sequence[Sequence[tuple[float, float, bool]]], draws: int = 1000, seed: int = 0,
                          level: float = 0.95) -> tuple[float, float, float]:
    """AUC(a) − AUC(b) of two models' values on the same steps, from (value_a, value_b,
    truth) triples grouped by problem, with a paired bootstrap interval: each draw
    resamples the problems once and weighs both models' steps alike, so what the two
    share (which steps are hard) cancels, and the interval is narrower than the two
    AUCs' own intervals suggest. (nan, nan, nan) where a class is missing."""
    import numpy as np

    flat = [t for g in groups for t in g]
    truth = np.array([t for _, _, t in flat], dtype=bool)
    if not truth.any() or truth.all():
        return float("nan"), float("nan"), float("nan")
    ties = [np.unique(np.array([t[k] for t in flat], dtype=float), return_inverse=True) for k in (0, 1)]

    def diff(weight) -> float:
        a, b = (weighted_auc(tie, truth, weight, len(levels)) for levels, tie in ties)
        return a - b

    point = diff(np.ones(len(flat)))
    lo, hi = _quantiles([diff(w) for w in group_weights([len(g) for g in groups], draws, seed)], level)
    return point, lo, hi


def stratified_auc(problems: Sequence[Sequence[Sequence[tuple[float, bool]]]], draws: int = 1000, seed: int = 0,
                   level: float = 0.95) -> dict:
    """AUC over pairs compared only inside a stratum: each problem is a list of strata,
    each a list of (value, truth); a right item is ranked against the wrong items of
    its own stratum only (ties count half), and the pairs of every stratum are pooled.
    With a stratum per problem and step position, this asks what pooled step AUC does
    not: among the problem's candidates at the same step, does the model put the right
    steps above the wrong ones? A pooled AUC also rewards knowing which problems are
    hard and that late steps go wrong more often, which picks no candidate. The
    interval resamples problems whole. Returns {auc, lo, hi, pairs}; auc is NaN where
    no stratum holds both classes."""
    auc, lo, hi, pairs = pooled_ratio([concordance(problem) for problem in problems], draws, seed, level)
    return {"auc": auc, "lo": lo, "hi": hi, "pairs": int(pairs)}


def pooled_ratio(counts: Sequence[tuple[float, float]], draws: int = 1000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float, float, float]:
    """(Σ hits / Σ total, lo, hi, Σ total) over per-group (hits, total) counts, the
    interval a bootstrap that resamples groups whole; NaNs where the total is 0."""
    import numpy as np

    counts = np.array(counts, dtype=float).reshape(-1, 2)
    hits, total = counts.sum(axis=0) if len(counts) else (0.0, 0.0)
    if not total:
        return float("nan"), float("nan"), float("nan"), 0.0
    draws_ = (weights @ counts for weights in group_weights([1] * len(counts), draws, seed))  # a group per row
    lo, hi = _quantiles([w / n if n else float("nan") for w, n in draws_], level)
    return float(hits / total), lo, hi, float(total)


def concordance(strata: Sequence[Sequence[tuple[float, bool]]]) -> tuple[float, int]:
    """(right-above-wrong pairs, ties counting half; all right-wrong pairs) within each
    stratum, summed."""
    won, pairs = 0.0, 0
    for stratum in strata:
        right = [v for v, t in stratum if t]
        wrong = [v for v, t in stratum if not t]
        won += sum((r > w) + 0.5 * (r == w) for r in right for w in wrong)
        pairs += len(right) * len(wrong)
    return won, pairs


def group_weights(sizes: Sequence[int], draws: int, seed: int):
    """Per bootstrap draw: each item's weight, its group's multiplicity in a resample of
    the groups with replacement (items listed group by group, `sizes` items each)."""
    import numpy as np

    group = np.repeat(np.arange(len(sizes)), sizes)
    rng = np.random.default_rng(seed)
    for _ in range(draws):
        yield np.bincount(rng.integers(0, len(sizes), len(sizes)), minlength=len(sizes))[group]


def _quantiles(values: Sequence[float], level: float) -> tuple[float, float]:
    """The central `level` interval of the non-NaN values; (nan, nan) if none."""
    import numpy as np

    kept = [v for v in values if v == v]
    if not kept:
        return float("nan"), float("nan")
    lo, hi = np.quantile(kept, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def weighted_auc(tie, truth, weight, levels: int) -> float:
    """rank_auc with a weight per pair (`tie`: each pair's tie level, ascending by
    value; ties count half): sum over positives of the negative weight below them plus
    half the negative weight tied with them, over (positive weight x negative weight)."""
    import numpy as np

    neg = np.bincount(tie, weights=weight * ~truth, minlength=levels)
    pos = np.bincount(tie, weights=weight * truth, minlength=levels)
    n_pos, n_neg = pos.sum(), neg.sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    below = np.cumsum(neg) - neg
    return float((pos * (below + 0.5 * neg)).sum() / (n_pos * n_neg))


def oracle_pairs(rows: Sequence[dict], values: Sequence[Sequence[float | None]]) -> list[tuple[float, bool]]:
    """(value, oracle verdict) for every step of every row that carries the oracle."""
    pairs = []
    for row, vals in zip(rows, values):
        truth = row.get("oracle")
        if truth is not None:
            pairs += [(v, t >= 0.5) for v, t in zip(vals, truth) if v is not None]
    return pairs


def agreement(pairs: Sequence[tuple[float, bool]], prefix: str) -> dict:
    """Agreement of soft values in [0, 1] with 0/1 truth: `<prefix>agreement` (hard:
    value >= 0.5 matches), `<prefix>auc` (does the value rank right steps above wrong
    ones), `<prefix>mae` (mean |value - truth|), the step count and the truth's
    positive rate. Empty when there is nothing to compare."""
    if not pairs:
        return {}
    n = len(pairs)
    return {f"{prefix}steps": n,
            f"{prefix}agreement": sum((v >= 0.5) == t for v, t in pairs) / n,
            f"{prefix}auc": rank_auc([v for v, _ in pairs], [t for _, t in pairs]),
            f"{prefix}mae": sum(abs(v - t) for v, t in pairs) / n,
            f"{prefix}positive_rate": sum(t for _, t in pairs) / n}


def label_agreement(rows: Sequence[dict], prefix: str = "oracle_") -> dict:
    """How well the rows' labels agree with the oracle, step by step (rows without
    an oracle are left out): the label-noise measurement."""
    return agreement(oracle_pairs(rows, [r["labels"] for r in rows]), prefix)


def score_metrics(rows: Sequence[dict], scores: Sequence[Sequence[float | None]], per_step: bool) -> dict:
    """A reward model's held-out metrics from its per-step scores (as its StepScorer
    returns them): `eval_auc` / `eval_acc` against the rows' labels (label >= 0.5;
    every step's with `per_step`, else each solution's last: its outcome), and
    `eval_auc_oracle` / `eval_acc_oracle` against the oracle at every step where the
    rows carry it."""
    pairs = []
    for row, s in zip(rows, scores):
        idx = range(len(s)) if per_step else [len(s) - 1]
        pairs += [(s[j], row["labels"][j] >= 0.5) for j in idx if s and s[j] is not None]
    truth = [t for _, t in pairs]
    out = {"eval_steps": len(pairs),
           "eval_auc": rank_auc([p for p, _ in pairs], truth),
           "eval_acc": sum((p >= 0.5) == t for p, t in pairs) / len(pairs) if pairs else float("nan"),
           "eval_positive_rate": sum(truth) / len(truth) if truth else float("nan")}
    oracle = agreement(oracle_pairs(rows, scores), "oracle_")
    if oracle:
        out.update(eval_oracle_steps=oracle["oracle_steps"], eval_auc_oracle=oracle["oracle_auc"],
                   eval_acc_oracle=oracle["oracle_agreement"])
    return out
