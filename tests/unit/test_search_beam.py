"""Beam search and the shared step machinery, on a scripted policy and scorer."""

import json

import pytest
from search_fixtures import TableScorer, budget, kept_first_steps, problem, scripted

from searchlearn.generation.base import Completion
from searchlearn.generation.scripted import count_tokens as tok
from searchlearn.search import ALGORITHMS
from searchlearn.search.base import SearchResult
from searchlearn.search.beam import BeamSearch, Step, read_step

# --- reading one sampled step -----------------------------------------------------------


@pytest.mark.parametrize(
    "text, finish, expected",
    [
        ("3 + 4 = 7\n", "stop", Step("3 + 4 = 7", 5, False)),
        ("The answer is 7.\n", "stop", Step("The answer is 7.", 5, True)),
        ("so it is 7", "stop", Step("so it is 7", 5, True)),  # EOS without a newline ends the solution
        ("3 + 4 =", "length", Step("3 + 4 =", 5, True)),  # cut at the step token limit
        ("\n", "stop", None),  # empty step
        ("   \n", "stop", None),
        ("", "stop", None),  # EOS straight away
    ],
)
def test_read_step(text, finish, expected):
    assert read_step(Completion(text=text, num_tokens=5, finish_reason=finish)) == expected


# --- beam search ------------------------------------------------------------------------

ROOT4 = {"": ["A\n", "B\n", "C\n", "D\n"],
         "B\n": ["The answer is 7.\n", "E\n"],
         "D\n": ["The answer is 8.\n", "F\n"]}
SCORES4 = {"A": 0.1, "B": 0.9, "C": 0.5, "D": 0.7, "The answer is 7.": 0.95, "E": 0.2,
           "The answer is 8.": 0.6, "F": 0.3}


def test_beam_keeps_top_k_by_score_and_counts_tokens():
    gen, scorer = scripted(ROOT4), TableScorer(SCORES4)
    # n=4, expansions=2 -> beam_width 2; the root is expanded twice, 2 samples each.
    [res] = BeamSearch(expansions=2).search([problem()], gen, scorer, budget(n=4))
    assert kept_first_steps(res) == ["B", "D"]
    # Step 2: answer7 .95, answer8 .6, F .3, E .2 -> both kept are terminal: 2 finished, stop.
    assert [c.text for c in res.candidates] == ["B\nThe answer is 7.\n", "D\nThe answer is 8.\n"]
    assert [c.correct for c in res.candidates] == [True, False]
    assert [c.score for c in res.candidates] == [0.95, 0.6]
    assert res.best == 0 and res.solved
    # Exactly these 8 samples were drawn; every one of their tokens counts.
    assert res.tokens == tok("A\nB\nC\nD\nThe answer is 7.\nE\nThe answer is 8.\nF\n") == gen.stats.tokens
    assert [c.num_tokens for c in res.candidates] == [tok("B\nThe answer is 7.\n")] * 2
    assert gen.stats.calls == 2 and scorer.calls == [4, 4]
    assert [n["value"] for n in res.tree[1:5]] == [0.1, 0.9, 0.5, 0.7]
    assert [(n["step"], n["parent"], n["terminal"], n["correct"]) for n in res.tree[5:]] == [
        ("The answer is 7.", 2, True, True), ("E", 2, False, None),
        ("The answer is 8.", 4, True, False), ("F", 4, False, None)]
    assert res.extra["candidate_nodes"] == [5, 7] and res.extra["step_samples"] == 8


def test_beam_prunes_terminal_children_but_keeps_them_as_candidates():
    # Width 1: the answer step scores below B, so B is kept and the answer is pruned.
    table = {"": ["The answer is 5.\n", "B\n"], "B\n": ["The answer is 7.\n"]}
    gen, scorer = scripted(table), TableScorer({"The answer is 5.": 0.2, "B": 0.8})
    [res] = BeamSearch(beam_width=1, expansions=2).search([problem()], gen, scorer, budget(n=2))
    assert [(c.text, c.correct) for c in res.candidates] == [
        ("The answer is 5.\n", False), ("B\nThe answer is 7.\n", True), ("B\nThe answer is 7.\n", True)]
    assert res.tree[1]["visits"] == 0 and res.tree[2]["visits"] == 1


def test_beam_advances_all_problems_in_one_call_per_step():
    table = {"": ["S\n"], "S\n": ["The answer is 7.\n"]}
    gen, scorer = scripted(table), TableScorer({})
    problems = [problem(f"p{i}") for i in range(3)]
    results = BeamSearch(expansions=2).search(problems, gen, scorer, budget(n=4))
    # 2 search steps -> 2 generate calls, each with 3 problems x 2 beams prompts.
    assert gen.stats.calls == 2 and gen.stats.prompts == 12
    assert scorer.calls == [12, 12]
    assert [r.tokens for r in results] == [4 * tok("S\n") + 4 * tok("The answer is 7.\n")] * 3
    assert all(r.solved for r in results)


def test_beam_budget_is_exact_when_nothing_ever_finishes():
    # The model never answers: every step spends exactly n samples, and solutions stop at max_steps.
    gen, scorer = scripted({}, default="x\n"), TableScorer({})
    problems = [problem("p1"), problem("p2")]
    results = BeamSearch(expansions=2).search(problems, gen, scorer, budget(n=6, max_steps=3))
    assert gen.stats.completions == 2 * 6 * 3
    for r in results:
        assert r.extra["beam_width"] == 3 and r.extra["step_samples"] == 18 and r.tokens == 18 * tok("x\n")
        assert len(r.candidates) == 6 and all(c.text == "x\nx\nx\n" and c.correct is False for c in r.candidates)
        assert max(n["depth"] for n in r.tree) == 3
    gen = scripted({}, default="x\n")
    [r] = BeamSearch(beam_width=0, expansions=3).search([problem()], gen, TableScorer({}), budget(n=7, max_steps=1))
    assert r.extra["beam_width"] == 2 and gen.stats.completions == 6  # 0 = n // expansions
    # An explicit narrower beam spends less, never more.
    gen = scripted({}, default="x\n")
    BeamSearch(beam_width=2, expansions=2).search([problem()], gen, TableScorer({}), budget(n=6, max_steps=3))
    assert gen.stats.completions == 2 * 2 * 3


def test_beam_rejects_budgets_it_would_exceed():
    with pytest.raises(ValueError, match="beam_width \\* expansions"):
        BeamSearch(beam_width=3, expansions=2).search([problem()], scripted({}), TableScorer({}), budget(n=4))
    with pytest.raises(ValueError, match="beam_width \\* expansions"):
        BeamSearch(expansions=8).search([problem()], scripted({}), TableScorer({}), budget(n=4))
    with pytest.raises(ValueError, match="scorer"):
        BeamSearch().search([problem()], scripted({}), None, budget())


def test_beam_handles_malformed_steps():
    # Empty step (dropped), gibberish (a normal step the PRM scores low), a step cut at the
    # 5-token limit (terminal, no answer), and a good step.
    table = {"": ["\n", "zq%#\n", "a b c d e f g\n", "Good\n"], "Good\n": ["The answer is 7.\n"]}
    scores = {"zq%#": 0.05, "a b c d e": 0.3, "Good": 0.8, "The answer is 7.": 0.9}
    gen, scorer = scripted(table), TableScorer(scores)
    [res] = BeamSearch(beam_width=1, expansions=4).search([problem()], gen, scorer,
                                                           budget(n=4, max_step_tokens=5))
    assert [(n["step"], n["terminal"]) for n in res.tree[1:4]] == [
        ("zq%#", False), ("a b c d e", True), ("Good", False)]
    assert res.extra["dropped_steps"] == 1
    assert [(c.text, c.answer, c.correct) for c in res.candidates[:2]] == [
        ("a b c d e\n", None, False), ("Good\nThe answer is 7.\n", "7", True)]
    assert res.best == 1
    # The empty and the cut samples count too; then Good's 4 answer samples.
    assert res.tokens == tok("\n") + tok("zq%#\n") + 5 + tok("Good\n") + 4 * tok("The answer is 7.\n")
    assert res.tokens == gen.stats.tokens


def test_beam_result_round_trips_through_json():
    [res] = BeamSearch(expansions=2).search([problem()], scripted(ROOT4), TableScorer(SCORES4), budget(n=4))
    back = SearchResult.from_dict(json.loads(json.dumps(res.to_dict())))
    assert back == res


def test_registered():
    assert ALGORITHMS["beam_search"] is BeamSearch
