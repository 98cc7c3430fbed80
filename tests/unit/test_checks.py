"""Step checks composed with a reward model (reward/checks.py, prm.step_check)."""

from __future__ import annotations

import pytest

from searchlearn.reward.checks import CheckedScorer, calculator_fails, checked, with_step_check

GOOD = ["Sam has 65 eggs.", "He collects 14 more: 65 + 14 = 79.", "He uses 31: 79 - 31 = 48.", "The answer is 48."]
SLIP = ["Sam has 65 eggs.", "He collects 14 more: 65 + 14 = 78.", "He uses 31: 78 - 31 = 47.", "The answer is 47."]


class FixedScorer:
    """A reward model that likes every step (0.9), as a small PRM that believes the
    policy's slips does; only to see what the check does to its values."""

    aggregations = ("min", "last")

    def __init__(self):
        self.calls = 0

    def score(self, questions, step_lists):
        self.calls += 1
        return [[0.9] * len(steps) for steps in step_lists]


def test_the_calculator_fails_a_slip_and_nothing_else():
    assert [calculator_fails(s) for s in SLIP] == [False, True, False, False]  # 78 - 31 = 47 holds
    assert not any(calculator_fails(s) for s in GOOD)
    assert not calculator_fails("__import__('os').system('x') = 1")  # text, never run


def test_a_failed_step_and_every_step_after_it_score_zero():
    assert checked([0.9, 0.8, 0.7, 0.6], SLIP, calculator_fails) == [0.9, 0.0, 0.0, 0.0]
    assert checked([0.9, None, 0.7, 0.6], GOOD, calculator_fails) == [0.9, None, 0.7, 0.6]


def test_a_checked_scorer_ranks_the_slip_below_the_right_solution():
    inner = FixedScorer()
    scorer = with_step_check(inner, "calculator")
    assert isinstance(scorer, CheckedScorer) and scorer.aggregations == ("min", "last")
    good, slip = scorer.score(["q", "q"], [GOOD, SLIP])
    assert min(good) == 0.9 > min(slip) == 0.0 and inner.calls == 1


def test_none_leaves_the_scorer_and_an_unknown_check_is_an_error():
    inner = FixedScorer()
    assert with_step_check(inner, "none") is inner and with_step_check(None, "calculator") is None
    with pytest.raises(ValueError, match="unknown step check 'python'"):
        with_step_check(inner, "python")
