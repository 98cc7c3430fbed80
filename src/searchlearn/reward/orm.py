"""The outcome reward model: one verifier-trained score per solution, behind the
same StepScorer protocol as the PRM.

Standard ORM (Cobbe et al. 2021 style, single label): the solution's correctness
sits on the last step's end token. Training is prm_train with target="orm", so
there is one trainer. Its rows use the labelled-step format with every step
labelled with the outcome (source "outcome"), which keeps one dataset reader and
lets the same rows train an outcome-supervised PRM if one ever wants that.
"""

from __future__ import annotations

from typing import Iterable

from searchlearn.formatting import split_steps
from searchlearn.reward.prm import PRMScorer, fill_missing

ORM_SOURCE = "outcome"


class ORMScorer(PRMScorer):
    """`score` returns the whole-solution score for every step, so aggregation
    "last" (or any other) equals the ORM score. On a partial solution that is the
    ORM's judgement of the text so far, read at its last token."""

    kind = "orm"
    aggregations = ("last",)

    def _per_step(self, raw: list[float | None]) -> list[float]:
        last = fill_missing(raw)[-1] if raw else 0.5
        return [last] * len(raw)


def outcome_rows(results: Iterable, per_problem: int | None = None) -> list[dict]:
    """Labelled-step rows from search results (SearchResult objects or their
    dicts): every step of a verified candidate carries its correctness. Candidates
    without steps or without a verdict are skipped; `per_problem` caps rows per
    problem after dropping duplicate texts."""
    rows = []
    for res in results:
        res = res if isinstance(res, dict) else res.to_dict()
        seen: set[str] = set()
        for cand in res["candidates"]:
            steps = split_steps(cand["text"])
            if not steps or cand.get("correct") is None or cand["text"] in seen:
                continue
            if per_problem is not None and len(seen) >= per_problem:
                break
            seen.add(cand["text"])
            label = 1.0 if cand["correct"] else 0.0
            rows.append({"question": res["question"], "steps": steps, "labels": [label] * len(steps),
                         "problem_id": str(res["problem_id"]), "source": ORM_SOURCE})
    return rows
