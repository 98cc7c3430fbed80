"""DVTS: independent greedy-by-PRM subtrees, on a scripted policy and scorer."""

import pytest
from search_fixtures import TableScorer, budget, kept_first_steps, problem, scripted

from searchlearn.generation.scripted import count_tokens as tok
from searchlearn.search import ALGORITHMS
from searchlearn.search.beam import BeamSearch
from searchlearn.search.dvts import DVTS

# n=4, expansions=2 -> 2 subtrees. Root samples are drawn in request order, so
# subtree 0 sees A, B and subtree 1 sees C, D.
TABLE = {"": ["A\n", "B\n", "C\n", "D\n"], "B\n": ["The answer is 7.\n"], "C\n": ["The answer is 9.\n"],
         "D\n": ["The answer is 8.\n"]}


def test_dvts_keeps_the_best_of_each_subtree_where_beam_keeps_the_global_best():
    scores = {"A": 0.2, "B": 0.3, "C": 0.9, "D": 0.8}
    [dvts] = DVTS(expansions=2).search([problem()], scripted(TABLE), TableScorer(scores), budget(n=4))
    [beam] = BeamSearch(expansions=2).search([problem()], scripted(TABLE), TableScorer(scores), budget(n=4))
    assert kept_first_steps(beam) == ["C", "D"]  # both from one region of the tree
    assert kept_first_steps(dvts) == ["B", "C"]  # one per subtree, though B < D
    # Each subtree samples its own 2 continuations and keeps one: 4 terminal nodes, 2 finished.
    assert [c.text for c in dvts.candidates] == ["B\nThe answer is 7.\n"] * 2 + ["C\nThe answer is 9.\n"] * 2
    assert dvts.best == 0  # all answers score the default 0.5: the first wins
    assert dvts.solved and dvts.extra["subtrees"] == 2


def test_dvts_subtree_choices_do_not_depend_on_other_subtrees_scores():
    base = {"A": 0.2, "B": 0.3}
    runs = []
    # Only subtree 1's scores change, from above subtree 0's to below them.
    for other in ({"C": 0.9, "D": 0.8}, {"C": 0.1, "D": 0.05}, {"C": 0.01, "D": 0.02}):
        [res] = DVTS(expansions=2).search([problem()], scripted(TABLE), TableScorer({**base, **other}), budget(n=4))
        runs.append(res)
    assert [kept_first_steps(r)[0] for r in runs] == ["B", "B", "B"]  # subtree 0 never moves
    assert [kept_first_steps(r)[1] for r in runs] == ["C", "C", "D"]  # subtree 1 follows its own scores
    # Subtree 0's path and the samples it drew are identical in every run.
    assert all(r.tree[5]["parent"] == 2 and r.tree[5]["step"] == "The answer is 7." for r in runs)


def test_dvts_budget_and_batching():
    # n=5, expansions=2 -> 2 subtrees, 4 step samples per problem per step (<= n).
    gen, scorer = scripted({}, default="x\n"), TableScorer({})
    problems = [problem("p1"), problem("p2"), problem("p3")]
    results = DVTS(expansions=2).search(problems, gen, scorer, budget(n=5, max_steps=3))
    assert gen.stats.calls == 3 and len(scorer.calls) == 3  # one call per step for all problems
    assert gen.stats.completions == 3 * 4 * 3
    assert all(r.extra["step_samples"] == 12 and r.tokens == 12 * tok("x\n") for r in results)
    assert all(len(r.candidates) == 4 and not r.solved for r in results)


def test_dvts_subtree_ends_when_all_its_samples_are_empty():
    # Subtree 0 draws two empty steps and dies; subtree 1 carries on alone.
    table = {"": ["\n", "\n", "C\n", "D\n"], "C\n": ["The answer is 7.\n"]}
    gen, scorer = scripted(table), TableScorer({"C": 0.9, "D": 0.1})
    [res] = DVTS(expansions=2).search([problem()], gen, scorer, budget(n=4))
    assert res.extra["dropped_steps"] == 2
    assert kept_first_steps(res) == ["C"]
    assert [c.text for c in res.candidates] == ["C\nThe answer is 7.\n"] * 2 and res.solved
    assert gen.stats.calls == 2 and gen.stats.prompts == 3


def test_dvts_validation():
    with pytest.raises(ValueError, match="n >= expansions"):
        DVTS(expansions=4).search([problem()], scripted({}), TableScorer({}), budget(n=3))
    with pytest.raises(ValueError, match="scorer"):
        DVTS().search([problem()], scripted({}), None, budget())
    assert ALGORITHMS["dvts"] is DVTS
