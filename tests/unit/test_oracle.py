"""The exact step oracle on hand-made solutions (reward/oracle.py)."""

from __future__ import annotations

import inspect

import pytest

from searchlearn.formatting import split_steps
from searchlearn.problems.arithmetic import make_splits
from searchlearn.reward import oracle
from searchlearn.reward.oracle import check, reference_equations

Q = "Sam has 65 eggs. He collects 14 more eggs. He uses 31 eggs to bake a cake. How many eggs does Sam have left?"
EQ = reference_equations({"equations": [[65, "+", 14, 79], [79, "-", 31, 48]]})


def verdict(text: str, question: str = Q, answer: str = "48", equations=EQ):
    return check(question, answer, equations, split_steps(text))


def test_the_reference_solution_is_right_at_every_step():
    v = verdict("He collects 14 more eggs: 65 + 14 = 79.\nHe uses 31 eggs: 79 - 31 = 48.\nThe answer is 48.\n")
    assert v.correct == [True, True, True] and v.first_wrong is None and v.solved
    assert v.labels() == [1.0, 1.0, 1.0]


def test_every_generated_reference_solution_passes():
    train, _ = make_splits(300, 0, 1, 4, 100, seed=7)
    for p in train:
        v = check(p.question, p.answer, reference_equations(p.meta), split_steps(p.solution))
        assert v.solved and v.first_wrong is None, (p.question, p.solution)


def test_the_first_wrong_step_and_everything_after_it():
    v = verdict("65 + 14 = 78.\n78 - 31 = 47.\nThe answer is 47.\n")  # slip in step 0
    assert v.first_wrong == 0 and v.correct == [False, False, False] and not v.solved
    v = verdict("65 + 14 = 79.\n79 - 31 = 47.\nThe answer is 47.\n")  # slip in step 1
    assert v.first_wrong == 1 and v.labels() == [1.0, 0.0, 0.0]


def test_a_wrong_operation_with_right_arithmetic_is_wrong():
    v = verdict("65 + 14 = 79.\n79 + 31 = 110.\nThe answer is 110.\n")
    assert v.first_wrong == 1


def test_a_right_value_by_a_wrong_route_is_wrong():
    # 17 + 31 = 48 holds and 48 is the answer, but 17 is no quantity of the problem.
    v = verdict("65 + 14 = 79.\n17 + 31 = 48.\nThe answer is 48.\n")
    assert v.first_wrong == 1 and not v.solved
    # A guessed answer without deriving it is wrong too.
    assert verdict("The answer is 48.\n").first_wrong == 0


def test_commuted_operands_and_a_chained_expression_are_right():
    assert verdict("14 + 65 = 79.\n79 - 31 = 48.\nThe answer is 48.\n").solved
    assert verdict("65 + 14 - 31 = 48.\nThe answer is 48.\n").solved
    assert verdict("31 - 79 = -48.\nThe answer is 48.\n").first_wrong == 0  # minus does not commute


def test_implied_constants_and_a_truncated_solution():
    q = "Ana has 12 shells. She gets twice as many. How many shells does she have?"
    eq = reference_equations({"equations": [[12, "*", 2, 24]]})
    assert check(q, "24", eq, ["12 * 2 = 24.", "The answer is 24."]).solved
    v = check(q, "24", eq, ["12 * 2 = 24."])  # no answer line yet: right so far, not solved
    assert v.correct == [True] and v.first_wrong is None and not v.solved


def test_text_steps_may_restate_known_numbers_but_not_invent_them():
    assert verdict("Sam starts with 65 eggs.\n65 + 14 = 79.\n79 - 31 = 48.\nThe answer is 48.\n").solved
    assert verdict("Sam starts with 70 eggs.\n70 + 14 = 84.\n").first_wrong == 0


@pytest.mark.parametrize("text", [
    "65 + 14 = 79" + " " * 5000 + ".\n",
    "9" * 200 + " + 1 = 1" + "0" * 200 + ".\n",
    "__import__('os').system('true') = 79.\n",
    "65 + + 14 = 79.\n",
    "1e3 + 14 = 1014.\n",
    "٦٥ + ١٤ = ٧٩.\n",
    "65 / 0 = 79.\n",
    "",
])
def test_hostile_text_is_judged_without_crashing(text):
    v = verdict(text)
    assert len(v.correct) == len(split_steps(text)) and not v.solved


def test_the_oracle_parses_and_never_evaluates():
    source = inspect.getsource(oracle)
    assert "eval(" not in source.replace("_evaluate(", "") and "exec(" not in source


def test_problems_without_reference_equations_have_no_oracle():
    assert reference_equations({}) is None and reference_equations({"equations": []}) is None


@pytest.mark.parametrize("step, holds", [
    ("He collects 14 more: 65 + 14 = 79.", True),
    ("He collects 14 more: 65 + 14 = 78.", False),  # a slip
    ("65 + 31 = 96.", True),  # the wrong quantities, but right arithmetic
    ("65 + 14 - 31 = 48.", True),
    ("16 * 3 = 54, then", False),
    ("65 / 0 = 79.", False),
    ("65 + + 14 = 79.", None),  # no expression parses: judged as text by check()
    ("Sam has 65 eggs.", None),  # states no computation
    ("The answer is 48.", None),
])
def test_arithmetic_holds_tells_a_slip_from_a_wrong_choice(step, holds):
    assert oracle.arithmetic_holds(step) is holds


@pytest.mark.parametrize("step, holds", [
    ("10 / 3 = 3.33.", True),
    ("10 / 3 = 3.3", True),
    ("2 / 3 = 0.67", True),  # halves and above round up
    ("10 / 3 = 3.34", False),
    ("10 / 3 = 3", False),  # written without decimals: must be exact
    ("-10 / 3 = -3.33", True),
    ("7 / 2 = 3.5", True),
])
def test_a_rounded_result_holds_when_asked(step, holds):
    assert oracle.arithmetic_holds(step, rounded=True) is holds
    assert oracle.arithmetic_holds(step) is (holds and step in ("7 / 2 = 3.5",))  # the oracle stays exact
