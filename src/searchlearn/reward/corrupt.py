"""Synthetic wrong steps: step-level negatives that need neither rollouts nor an oracle.

A step's Monte-Carlo value says whether the policy can still finish from it, which
is a weak, noisy signal about the step's own arithmetic (reward/quality.py measures
how weak). The errors that decide a problem's candidates are mostly a wrong number
in an otherwise right-looking step (`16 * 3 = 54`). Changing the number a step
commits to (the one after its last `=`, else its last number) into a near miss gives
a step that is wrong whatever the rest of the solution does; the solution is cut
there, since later steps would no longer follow from it. The corrupted step is
labelled 0 and the steps before it keep their labels, so each corrupted row pairs
with its source row at the same step: the contrast a within-problem ranking needs.

Only steps the labels call good (label >= `min_label`) are corrupted: a near miss of
a wrong number could land on the right one. Numbers are rewritten as text, never
evaluated. Used for step-label kinds only (reward/labels.py STEP_LABEL_KINDS), on
training rows only: held-out rows stay as labelled, so eval AUC is not inflated by
negatives that are easy by construction.
"""

from __future__ import annotations

import random
from typing import Sequence

from searchlearn.reward.oracle import NUMBERS

SOURCE = "corrupt"


def target_span(step: str) -> tuple[int, int] | None:
    """Where the number the step commits to is: the first number after its last `=`,
    else its last number; None if the step has no number."""
    eq = step.rfind("=")
    if eq >= 0:
        after = NUMBERS.search(step, eq + 1)
        if after:
            return after.span(1)
    last = None
    for last in NUMBERS.finditer(step):
        pass
    return last.span(1) if last else None


def near_miss(number: str, rng: random.Random) -> str:
    """A different number of the same written form, close to `number`: off by a
    small amount, or one digit changed (the slips a policy makes)."""
    digits = [i for i, ch in enumerate(number) if ch.isdigit()]
    plain = number.isdigit()
    for _ in range(20):
        if plain and rng.random() < 0.5:
            value = int(number)
            offset = rng.randint(1, max(1, value // 5))
            new = str(value - offset if value - offset >= 0 and rng.random() < 0.5 else value + offset)
        else:
            i = rng.choice(digits)
            leading = i == 0 and len(digits) > 1  # never write a leading zero
            choices = [d for d in "0123456789" if d != number[i] and not (leading and d == "0")]
            new = number[:i] + rng.choice(choices) + number[i + 1:]
        if new != number:
            return new
    return number + "1"  # unreachable in practice: every branch above changes a digit


def corrupt_step(step: str, rng: random.Random) -> str | None:
    """`step` with the number it commits to replaced by a near miss, or None."""
    span = target_span(step)
    if span is None:
        return None
    start, end = span
    return step[:start] + near_miss(step[start:end], rng) + step[end:]


def corrupt_rows(rows: Sequence[dict], per_row: int, seed: int, min_label: float = 0.5) -> list[dict]:
    """Up to `per_row` corrupted copies of each labelled-step row (reward/labels.py
    format), each cut at a different good step; deterministic in `seed`."""
    if per_row <= 0:
        return []
    rng = random.Random(seed)
    out = []
    for row in rows:
        good = [j for j, y in enumerate(row["labels"]) if y >= min_label and target_span(row["steps"][j])]
        for j in sorted(rng.sample(good, min(per_row, len(good)))):
            wrong = corrupt_step(row["steps"][j], rng)
            out.append({"question": row["question"], "steps": [*row["steps"][:j], wrong],
                        "labels": [*row["labels"][:j], 0.0], "problem_id": row["problem_id"], "source": SOURCE})
    return out
