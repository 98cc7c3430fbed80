"""Preference-pair construction on hand-made search results."""

import pytest

from searchlearn.formatting import build_prompt
from searchlearn.learn.pairs import PairStats, build_pairs, solution_pairs, step_pairs
from searchlearn.search.base import Candidate, SearchResult

Q = "Tom has 3 apples and buys 4 more. How many apples does he have?"
RIGHT_A = "3 + 4 = 7\nThe answer is 7.\n"
RIGHT_B = "Tom buys 4 more apples.\n3 + 4 = 7\nThe answer is 7.\n"
WRONG_A = "3 + 4 = 8\nThe answer is 8.\n"
WRONG_B = "3 - 4 = -1\nThe answer is -1.\n"


def cand(text, correct):
    return Candidate(text=text, num_tokens=len(text.split()), correct=correct)


def result(cands, pid="p1", tree=None):
    return SearchResult(problem_id=pid, question=Q, reference="7", candidates=cands, best=0, tokens=0, tree=tree)


def node(id, parent, step, value, depth=1):
    return {"id": id, "parent": parent, "step": step, "depth": depth, "value": value,
            "visits": 1, "prior": 0.5, "terminal": False, "correct": None}


ROOT = {"id": 0, "parent": None, "step": "", "depth": 0, "value": 0.5, "visits": 4, "prior": 1.0,
        "terminal": False, "correct": None}


# --- solution level ---------------------------------------------------------------------


def test_solution_pairs_need_both_correct_and_incorrect():
    stats = PairStats()
    all_right = result([cand(RIGHT_A, True), cand(RIGHT_B, True)], pid="all_right")
    all_wrong = result([cand(WRONG_A, False), cand(WRONG_B, False)], pid="all_wrong")
    assert solution_pairs([all_right, all_wrong], max_pairs_per_problem=4, seed=0, stats=stats) == []
    assert stats.problems_without_solution_pairs == 2 and stats.solution == 0


def test_solution_pairs_exact_content():
    r = result([cand(RIGHT_A, True), cand(WRONG_A, False)])
    assert solution_pairs([r], max_pairs_per_problem=4, seed=0) == [
        {"prompt": build_prompt(Q), "chosen": RIGHT_A, "rejected": WRONG_A, "problem_id": "p1",
         "level": "solution", "margin": 1.0}
    ]


def test_solution_pairs_trim_rambling_dedupe_and_accept_dicts():
    # Text after the answer line is dropped, so the duplicate collapses to one chosen text.
    r = result([cand(RIGHT_A + "Extra words\n", True), cand(RIGHT_A, True), cand(WRONG_A, False)])
    pairs = solution_pairs([r.to_dict()], max_pairs_per_problem=0, seed=0)
    assert [(p["chosen"], p["rejected"]) for p in pairs] == [(RIGHT_A, WRONG_A)]


def test_solution_pairs_fall_back_to_the_verifier_when_correct_is_unset():
    r = result([cand(RIGHT_A, None), cand(WRONG_A, None)])
    [pair] = solution_pairs([r], max_pairs_per_problem=1, seed=0)
    assert (pair["chosen"], pair["rejected"]) == (RIGHT_A, WRONG_A)


def test_solution_pairs_cap_is_deterministic_and_counted():
    r = result([cand(RIGHT_A, True), cand(RIGHT_B, True), cand(WRONG_A, False), cand(WRONG_B, False)])
    stats = PairStats()
    first = solution_pairs([r], max_pairs_per_problem=3, seed=7, stats=stats)
    again = solution_pairs([r], max_pairs_per_problem=3, seed=7)
    assert first == again and len(first) == 3
    assert stats.dropped_by_cap == 1 and stats.solution == 3
    everything = solution_pairs([r], max_pairs_per_problem=0, seed=7)
    assert {(p["chosen"], p["rejected"]) for p in everything} == {
        (RIGHT_A, WRONG_A), (RIGHT_A, WRONG_B), (RIGHT_B, WRONG_A), (RIGHT_B, WRONG_B)}
    # A different seed may pick a different subset, but always from the same four.
    other = solution_pairs([r], max_pairs_per_problem=3, seed=8)
    assert {(p["chosen"], p["rejected"]) for p in other} <= {(p["chosen"], p["rejected"]) for p in everything}


# --- step level -------------------------------------------------------------------------


def tree_two_levels():
    """root -> {1: good first step 0.9, 2: bad first step 0.2}; 1 -> {3: 0.8, 4: 0.7, 5: 0.1}."""
    return [
        ROOT,
        node(1, 0, "3 + 4 = 7", 0.9),
        node(2, 0, "3 - 4 = -1", 0.2),
        node(3, 1, "The answer is 7.", 0.8, depth=2),
        node(4, 1, "So he has 7 apples.", 0.7, depth=2),
        node(5, 1, "The answer is 8.", 0.1, depth=2),
    ]


def test_step_pairs_shared_prefix_direction_and_margin():
    stats = PairStats()
    pairs = step_pairs([result([], tree=tree_two_levels())], min_margin=0.3, max_pairs_per_problem=0, stats=stats)
    prompt0, prompt1 = build_prompt(Q), build_prompt(Q) + "3 + 4 = 7\n"
    assert pairs == [
        {"prompt": prompt0, "chosen": "3 + 4 = 7\n", "rejected": "3 - 4 = -1\n", "problem_id": "p1",
         "level": "step", "margin": pytest.approx(0.7)},
        {"prompt": prompt1, "chosen": "The answer is 7.\n", "rejected": "The answer is 8.\n", "problem_id": "p1",
         "level": "step", "margin": pytest.approx(0.7)},
        {"prompt": prompt1, "chosen": "So he has 7 apples.\n", "rejected": "The answer is 8.\n",
         "problem_id": "p1", "level": "step", "margin": pytest.approx(0.6)},
    ]
    # 0.8 vs 0.7 is too close.
    assert stats.dropped_by_margin == 1 and stats.step == 3


def test_step_pairs_margin_boundary_is_inclusive_despite_float_error():
    tree = [ROOT, node(1, 0, "a", 0.7), node(2, 0, "b", 0.5)]  # 0.7 - 0.5 = 0.19999...
    assert len(step_pairs([result([], tree=tree)], min_margin=0.2, max_pairs_per_problem=0)) == 1


def test_step_pairs_cap_keeps_largest_margins():
    stats = PairStats()
    pairs = step_pairs([result([], tree=tree_two_levels())], min_margin=0.3, max_pairs_per_problem=2, stats=stats)
    assert [p["margin"] for p in pairs] == [pytest.approx(0.7), pytest.approx(0.7)]
    assert stats.dropped_by_cap == 1


def test_step_pairs_none_when_siblings_equal_or_missing():
    equal = [ROOT, node(1, 0, "a", 0.5), node(2, 0, "b", 0.5)]
    duplicate_text = [ROOT, node(1, 0, "same", 0.9), node(2, 0, "same", 0.1)]
    no_value = [ROOT, node(1, 0, "a", None), node(2, 0, "b", 0.9)]
    only_child = [ROOT, node(1, 0, "a", 0.9), node(2, 1, "b", 0.1, depth=2)]
    results = [result([], pid=str(i), tree=t) for i, t in enumerate([equal, duplicate_text, no_value, only_child])]
    results.append(result([cand(RIGHT_A, True)], pid="no_tree"))
    stats = PairStats()
    assert step_pairs(results, min_margin=0.0, max_pairs_per_problem=0, stats=stats) == []
    assert stats.problems_without_step_pairs == 5


def test_build_pairs_both_levels_and_stats():
    r = result([cand(RIGHT_A, True), cand(WRONG_A, False)], tree=tree_two_levels())
    pairs, stats = build_pairs([r.to_dict()], "both", min_margin=0.3, max_pairs_per_problem=1, seed=0)
    assert [p["level"] for p in pairs] == ["solution", "step"]
    assert stats == {"solution": 1, "step": 1, "dropped_by_margin": 1, "dropped_by_cap": 2,
                     "problems_without_solution_pairs": 0, "problems_without_step_pairs": 0}
    with pytest.raises(ValueError, match="unknown pair level"):
        build_pairs([r], "token", 0.0, 1, 0)
