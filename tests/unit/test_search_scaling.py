"""Compute-matched comparison: which methods run, exact token accounting, and the
reranking effect of a scorer at equal budget (scripted policy and scorer)."""

from __future__ import annotations

import pytest

from search_fixtures import TableScorer, problem, scripted
from searchlearn.search.base import SearchBudget
from searchlearn.search.scaling import methods, scaling_curve, summary_metrics

RIGHT = "Add 3 and 4 to get 7.\nThe answer is 7.\n"
WRONG = "Add 3 and 4 to get 8.\nThe answer is 8.\n"
SEARCH = {"temperature": 1.0, "top_p": 1.0, "max_new_tokens": 64, "max_step_tokens": 16, "max_steps": 4,
          "aggregation": "min", "beam_search": {"expansions": 2, "beam_width": 0}, "dvts": {"expansions": 4},
          "mcts": {"expansions": 2, "evaluation": "prm", "use_verifier": True}}
SCORES = {"Add 3 and 4 to get 7.": 0.9, "The answer is 7.": 0.9, "Add 3 and 4 to get 8.": 0.1,
          "The answer is 8.": 0.1}


def test_scorer_free_methods_only_without_a_scorer():
    gen = scripted({"": [WRONG, WRONG, WRONG, RIGHT]})
    rows = scaling_curve([problem()], gen, None, ["bon_majority", "bon_weighted", "beam_search", "mcts"], [4],
                         SEARCH)
    assert [(r["method"], r["n"]) for r in rows] == [("bon_majority", 4)]
    assert rows[0]["accuracy"] == 0.0  # majority of 3 wrong vs 1 right


def test_a_scorer_turns_the_same_samples_into_a_right_pick_and_tokens_add_up():
    gen = scripted({"": [WRONG, WRONG, WRONG, RIGHT]})
    rows = scaling_curve([problem()], gen, TableScorer(SCORES), ["bon_majority", "bon_weighted"], [4], SEARCH)
    by = {r["method"]: r for r in rows}
    assert by["bon_majority"]["accuracy"] == 0.0 and by["bon_weighted"]["accuracy"] == 1.0
    pid = problem().id  # per-problem outcomes, for paired comparisons across methods
    assert by["bon_majority"]["solved"] == {pid: 0} and by["bon_weighted"]["solved"] == {pid: 1}
    assert by["bon_majority"]["tokens"] == by["bon_weighted"]["tokens"] > 0  # same budget, same samples
    assert sum(r["tokens"] for r in rows) == gen.stats.tokens
    assert by["bon_weighted"]["tokens_per_problem"] == by["bon_weighted"]["tokens"]


def test_budgets_too_small_for_a_tree_are_skipped_and_mcts_never_uses_the_verifier():
    chosen = {m.label: m.algorithm for m in methods(["beam_search", "dvts", "mcts"], SEARCH)}
    fits = lambda name, n: chosen[name].fits(SearchBudget.from_config({**SEARCH, "n": n}))  # noqa: E731
    assert not fits("beam_search", 1) and fits("beam_search", 2)
    assert not fits("dvts", 2) and fits("dvts", 4)
    assert chosen["mcts"].use_verifier is False and chosen["mcts"].needs_scorer
    gen = scripted({"": ["Add 3 and 4 to get 7.\n"], "Add 3 and 4 to get 7.\n": ["The answer is 7.\n"]})
    rows = scaling_curve([problem()], gen, TableScorer(SCORES), ["beam_search", "dvts"], [2, 4], SEARCH)
    assert [(r["method"], r["n"]) for r in rows] == [("beam_search", 2), ("beam_search", 4), ("dvts", 4)]
    assert all(r["accuracy"] == 1.0 for r in rows)


def test_reseed_is_called_once_per_cell_and_metrics_are_flat():
    seeds = []
    gen = scripted({"": [RIGHT]})
    rows = scaling_curve([problem()], gen, None, ["bon_majority"], [2, 4], SEARCH, reseed=seeds.append)
    assert seeds == [0, 1] and [r["n"] for r in rows] == [2, 4]
    metrics = summary_metrics(rows)
    assert metrics["scaling.bon_majority.n4.acc"] == 1.0
    assert metrics["scaling.bon_majority.n2.speed_vs_bon"] == 1.0
    assert metrics["scaling.bon_majority.n4.tokens"] == rows[1]["tokens_per_problem"]


def test_unknown_method_is_named():
    with pytest.raises(ValueError, match="beam"):
        methods(["beam"], SEARCH)
