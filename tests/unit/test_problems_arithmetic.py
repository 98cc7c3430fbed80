from __future__ import annotations

import operator
import re
import time
from collections import Counter

import pytest

from searchlearn.answers import extract_answer
from searchlearn.formatting import answer_line, split_steps
from searchlearn.problems.arithmetic import SCENARIOS, all_template_keys, make_splits, split_of
from searchlearn.problems.base import Problem, read_problems, write_problems
from searchlearn.problems.sources import load_splits

_STEP = re.compile(r"^(?P<lead>.+): (?P<a>\d+) (?P<op>[-+*/]) (?P<b>\d+) = (?P<c>\d+)\.$")
_OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul}
MAX_VALUE = 100


@pytest.fixture(scope="module")
def splits() -> tuple[list[Problem], list[Problem]]:
    return make_splits(train_size=800, test_size=200, min_steps=1, max_steps=4, max_value=MAX_VALUE, seed=0)


def _equations(problem: Problem) -> list[tuple[int, str, int, int]]:
    steps = split_steps(problem.solution)
    assert steps[-1] == answer_line(problem.answer), problem.solution
    out = []
    for step in steps[:-1]:
        m = _STEP.match(step)
        assert m, f"step is not '<text>: a op b = c.': {step!r}"
        out.append((int(m["a"]), m["op"], int(m["b"]), int(m["c"])))
    return out


def _exact(a: int, op: str, b: int) -> int | None:
    if op == "/":
        return a // b if b and a % b == 0 else None
    return _OPS[op](a, b)


def test_sizes_ids_and_split_names(splits):
    train, test = splits
    assert len(train) == 800 and len(test) == 200
    assert [p.id for p in train] == [f"arith-train-{i:05d}" for i in range(800)]
    assert [p.id for p in test] == [f"arith-test-{i:05d}" for i in range(200)]


def test_same_seed_same_problems_other_seed_other_problems(splits):
    again = make_splits(800, 200, 1, 4, MAX_VALUE, seed=0)
    assert [p.to_dict() for p in again[0] + again[1]] == [p.to_dict() for p in splits[0] + splits[1]]
    other = make_splits(800, 200, 1, 4, MAX_VALUE, seed=1)
    shared = {p.question for p in other[0]} & {p.question for p in splits[0]}
    assert len(shared) < 20


def test_train_and_test_are_disjoint_within_and_across_seeds(splits):
    other_train, other_test = make_splits(800, 200, 1, 4, MAX_VALUE, seed=7)
    train_q = {p.question for p in splits[0]} | {p.question for p in other_train}
    test_q = {p.question for p in splits[1]} | {p.question for p in other_test}
    assert not train_q & test_q
    assert len({p.question for p in splits[0]}) == 800  # no repeats inside a split either
    assert all(split_of(q) == "test" for q in test_q) and all(split_of(q) == "train" for q in train_q)


def test_every_step_is_exact_arithmetic_ending_at_the_answer(splits):
    for p in splits[0] + splits[1]:
        eqs = _equations(p)
        assert eqs, p.solution
        for i, (a, op, b, c) in enumerate(eqs):
            assert _exact(a, op, b) == c, f"{p.id}: {a} {op} {b} != {c}"
            assert 0 <= c <= max(1000, 10 * MAX_VALUE)
            if i:  # each event acts on the previous step's result
                assert a == eqs[i - 1][3], p.solution
        assert str(eqs[-1][3]) == p.answer == extract_answer(p.solution)


def test_every_number_in_the_question_is_used_and_every_operand_is_given(splits):
    for p in splits[0] + splits[1]:
        given = {int(n) for n in re.findall(r"\d+", p.question)}
        eqs = _equations(p)
        used = {eqs[0][0]} | {b for _, _, b, _ in eqs}
        assert given <= used, p.question
        # operands not stated as digits are the worded factors: twice, three times, half, a third
        assert used - given <= {2, 3}, (p.question, p.solution)


def test_step_counts_match_meta_and_cover_the_range(splits):
    counts = Counter()
    for p in splits[0]:
        assert len(_equations(p)) == p.meta["num_steps"]
        counts[p.meta["num_steps"]] += 1
    assert set(counts) == {1, 2, 3, 4}
    assert min(counts.values()) > 0.15 * len(splits[0])  # spread, not piled at one end
    narrow, _ = make_splits(200, 20, 2, 3, MAX_VALUE, seed=3)
    assert {len(_equations(p)) for p in narrow} == {2, 3}


def test_templates_and_scenarios_are_varied(splits):
    problems = splits[0] + splits[1]
    used = Counter(t for p in problems for t in p.meta["templates"])
    assert set(used) <= set(all_template_keys())
    assert len(used) >= 120
    assert len({p.meta["scenario"] for p in problems}) == len(SCENARIOS) >= 12
    # distinct sentence shapes once numbers and names are masked
    shapes = {re.sub(r"\b[A-Z][a-z]+\b|\d+", "#", p.question) for p in problems}
    assert len(shapes) > 500
    assert Counter(p.answer for p in problems).most_common(1)[0][1] < 0.05 * len(problems)


def test_questions_read_as_questions(splits):
    for p in splits[0] + splits[1]:
        assert p.question.endswith("?") and "{" not in p.question and "{" not in p.solution
        assert p.question[0].isupper()
        # the nouns are all plural, so a count of 1 would read "1 apples"
        assert not re.search(r"(?<![\d,.])1 (?!fewer|more)[a-z]+s\b", p.question), p.question


def test_problems_survive_jsonl_round_trip(splits, tmp_path):
    path = tmp_path / "train.jsonl"
    write_problems(path, splits[0][:50])
    assert read_problems(path) == splits[0][:50]


def test_registry_builds_arithmetic_splits():
    cfg = {"source": "arithmetic", "train_size": 30, "test_size": 10, "min_steps": 1, "max_steps": 2,
           "max_value": 50, "seed": 5}
    train, test = load_splits(cfg)
    assert (len(train), len(test)) == (30, 10)
    assert max(p.meta["num_steps"] for p in train) <= 2


@pytest.mark.parametrize("kwargs", [dict(min_steps=0), dict(max_steps=5), dict(min_steps=3, max_steps=2),
                                    dict(max_value=5), dict(train_size=-1)])
def test_bad_arguments_raise(kwargs):
    args = dict(train_size=10, test_size=5, min_steps=1, max_steps=4, max_value=100, seed=0) | kwargs
    with pytest.raises(ValueError):
        make_splits(**args)


def test_generation_is_fast():
    start = time.perf_counter()
    train, test = make_splits(2000, 200, 1, 4, MAX_VALUE, seed=11)
    assert len(train) == 2000 and len(test) == 200
    assert time.perf_counter() - start < 2.0  # ~0.25 s on 2 busy cores
