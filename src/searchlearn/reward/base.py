"""Reward interfaces: the outcome verifier and step-level scorers (PRM/ORM)."""

from __future__ import annotations

import math
from typing import Callable, Protocol, Sequence


class StepScorer(Protocol):
    """Scores each step of candidate solutions; one batched call per search step.

    `score(questions, step_lists)[i][j]` is the score in [0, 1] of step j of
    candidate i given its question and steps 0..j. An outcome reward model returns
    one score per step too (the same value for every step, or only the last
    meaningful), so search code never special-cases it.
    """

    def score(self, questions: Sequence[str], step_lists: Sequence[Sequence[str]]) -> list[list[float]]: ...


def agg_last(scores: Sequence[float]) -> float:
    return scores[-1] if scores else 0.0


def agg_min(scores: Sequence[float]) -> float:
    return min(scores) if scores else 0.0


def agg_prod(scores: Sequence[float]) -> float:
    return math.prod(scores) if scores else 0.0


def agg_mean(scores: Sequence[float]) -> float:
    return sum(scores) / len(scores) if scores else 0.0


AGGREGATIONS: dict[str, Callable[[Sequence[float]], float]] = {
    "last": agg_last,
    "min": agg_min,
    "prod": agg_prod,
    "mean": agg_mean,
}


def aggregate(scores: Sequence[float], how: str) -> float:
    try:
        return AGGREGATIONS[how](scores)
    except KeyError:
        raise ValueError(f"unknown aggregation {how!r}; choose one of {sorted(AGGREGATIONS)}") from None
