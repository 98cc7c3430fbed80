"""Choosing one final solution among candidates. Shared by best-of-N, the final
step of tree searches, and evaluation (maj@k)."""

from __future__ import annotations

from collections import defaultdict
from typing import Callable, Sequence

from searchlearn.search.base import Candidate


def select_first(cands: Sequence[Candidate]) -> int | None:
    return 0 if cands else None


def select_majority(cands: Sequence[Candidate]) -> int | None:
    """Most frequent answer; ties go to the answer seen first. Returns the index of
    that answer's first candidate. Candidates without an answer do not vote."""
    return _select_by_answer_weight(cands, lambda c: 1.0)


def select_weighted(cands: Sequence[Candidate]) -> int | None:
    """Weighted best-of-N: the answer with the largest summed scorer value."""
    _require_scores(cands, "weighted")
    return _select_by_answer_weight(cands, lambda c: c.score)


def select_best(cands: Sequence[Candidate]) -> int | None:
    """Vanilla best-of-N: the single highest-scoring candidate (first on ties)."""
    _require_scores(cands, "best")
    if not cands:
        return None
    return max(range(len(cands)), key=lambda i: (cands[i].score, -i))


def _select_by_answer_weight(cands: Sequence[Candidate], weight: Callable[[Candidate], float]) -> int | None:
    if not cands:
        return None
    totals: dict[str, float] = defaultdict(float)
    first_index: dict[str, int] = {}
    for i, c in enumerate(cands):
        if c.answer is None:
            continue
        totals[c.answer] += weight(c)
        first_index.setdefault(c.answer, i)
    if not totals:
        return 0
    winner = max(totals, key=lambda a: (totals[a], -first_index[a]))
    return first_index[winner]


def _require_scores(cands: Sequence[Candidate], how: str) -> None:
    if any(c.score is None for c in cands):
        raise ValueError(f"selection {how!r} needs scored candidates: configure a PRM/ORM scorer")


SELECTIONS: dict[str, Callable[[Sequence[Candidate]], int | None]] = {
    "first": select_first,
    "majority": select_majority,
    "weighted": select_weighted,
    "best": select_best,
}

# Selections that need a StepScorer.
SCORED_SELECTIONS = frozenset({"weighted", "best"})


def select(cands: Sequence[Candidate], how: str) -> int | None:
    return SELECTIONS[how](cands)
