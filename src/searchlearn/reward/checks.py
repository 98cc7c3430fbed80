"""Step checks: tools composed with any reward model (`prm.step_check`).

A check reads a step's text and says whether it is certainly wrong. A checked scorer
gives such a step, and every step after it, the value 0 (a solution that went wrong
cannot be trusted to reach its answer, as the PRM's hard labels say) and passes every
other value through, so search, reranking and GRPO shaping all see it.

`calculator`: the step states a computation (`16 * 3 = 54`) whose arithmetic does not
hold, found by parsing with exact fractions (oracle.arithmetic_holds; a result written
with decimals may be rounded), never by evaluating model text. It needs no reference
solution and no labels, so it works on any problem whose solutions write their
computations out; a step without one passes.
Why a tool: at quickstart scale 86 % of wrong candidates first go wrong at such a slip,
and the policy, so every reward model that starts from it, believes most of them
(README, "Why no scorer built from the policy can win the vote").
"""

from __future__ import annotations

from typing import Callable, Sequence

from searchlearn.reward.oracle import arithmetic_holds


def calculator_fails(step: str) -> bool:
    """The step's stated computation does not hold (False when it states none). A
    result written with decimals may be rounded (`10 / 3 = 3.33` holds): solutions
    round, and a rounded step is not a slip; one written without decimals must be exact."""
    return arithmetic_holds(step, rounded=True) is False


# prm.step_check -> the check (None: the scorer as it is).
STEP_CHECKS: dict[str, Callable[[str], bool] | None] = {"none": None, "calculator": calculator_fails}


def checked(values: Sequence[float | None], steps: Sequence[str], fails: Callable[[str], bool]) -> list:
    """`values` with 0.0 from the first step that `fails` on."""
    out, failed = [], False
    for value, step in zip(values, steps):
        failed = failed or fails(step)
        out.append(0.0 if failed else value)
    return out


class CheckedScorer:
    """A StepScorer whose values are `checked` by a step check; the reward model's
    other attributes (`aggregations`) are its own."""

    def __init__(self, scorer, fails: Callable[[str], bool]):
        self.scorer, self.fails = scorer, fails

    @property
    def aggregations(self) -> tuple[str, ...]:
        return self.scorer.aggregations

    def score(self, questions: Sequence[str], step_lists: Sequence[Sequence[str]]) -> list[list[float]]:
        return [checked(values, steps, self.fails)
                for values, steps in zip(self.scorer.score(questions, step_lists), step_lists)]


def with_step_check(scorer, check: str):
    """`scorer` checked by the `check` named (a STEP_CHECKS key); `none` or no scorer
    leaves it as it is."""
    if check not in STEP_CHECKS:
        raise ValueError(f"unknown step check {check!r}; choose one of {sorted(STEP_CHECKS)}")
    fails = STEP_CHECKS[check]
    return scorer if scorer is None or fails is None else CheckedScorer(scorer, fails)
