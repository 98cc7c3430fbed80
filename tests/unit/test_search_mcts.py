"""MCTS: the pure PUCT / backup / prior functions on hand-made trees, then whole
searches on a scripted policy and scorer with every value worked out by hand."""

import math

import pytest
from search_fixtures import TableScorer, budget, problem, scripted

from searchlearn.generation.scripted import count_tokens as tok
from searchlearn.search import ALGORITHMS
from searchlearn.search.base import tree_node
from searchlearn.search.beam import Step
from searchlearn.search.mcts import MCTS, backup, child_priors, puct_score, select_child

# --- pure functions ---------------------------------------------------------------------


def test_puct_score():
    # 0.5 + 2 * 0.25 * sqrt(16) / (1 + 3) = 0.5 + 0.5
    assert puct_score(q=0.5, prior=0.25, parent_visits=16, child_visits=3, c_puct=2.0) == 1.0
    # An unvisited child: all exploration, 1.5 * 0.5 * 3 / 1
    assert puct_score(q=0.0, prior=0.5, parent_visits=9, child_visits=0, c_puct=1.5) == 2.25


def hand_tree():
    """root(N=9) -> a(Q=.6, P=.2, N=4), b(Q=.3, P=.7, N=1); a -> a1 (new, unvisited)."""
    return [
        tree_node(0, None, "", 0, value=0.5, visits=9),
        tree_node(1, 0, "a", 1, value=0.6, visits=4, prior=0.2),
        tree_node(2, 0, "b", 1, value=0.3, visits=1, prior=0.7),
        tree_node(3, 1, "a1", 2, prior=1.0),
    ]


def test_select_child_by_puct():
    nodes = hand_tree()
    # c=1: a = .6 + .2*3/5 = .72, b = .3 + .7*3/2 = 1.35 -> b (exploration wins)
    assert select_child(nodes, 0, [1, 2], c_puct=1.0) == 2
    # c=.1: a = .6 + .012 = .612, b = .3 + .105 = .405 -> a (exploitation wins)
    assert select_child(nodes, 0, [1, 2], c_puct=0.1) == 1
    # Ties go to the first candidate.
    nodes[2].update(value=0.6, prior=0.2, visits=4)
    assert select_child(nodes, 0, [2, 1], c_puct=1.0) == 2


def test_backup_updates_running_means_along_the_path():
    nodes = hand_tree()
    backup(nodes, 3, 1.0)
    assert (nodes[3]["visits"], nodes[3]["value"]) == (1, 1.0)
    assert nodes[1]["visits"] == 5 and nodes[1]["value"] == pytest.approx((0.6 * 4 + 1.0) / 5)  # .68
    assert nodes[0]["visits"] == 10 and nodes[0]["value"] == pytest.approx((0.5 * 9 + 1.0) / 10)  # .55
    assert (nodes[2]["visits"], nodes[2]["value"]) == (1, 0.3)  # off the path: untouched
    backup(nodes, 2, 0.0)
    assert nodes[2]["value"] == pytest.approx(0.15) and nodes[0]["value"] == pytest.approx(5.5 / 11)


def test_child_priors_merge_identical_steps():
    steps = [Step("A", 1, False), Step("B", 1, False), Step("A", 1, False), Step("A", 1, True)]
    uniform = child_priors(steps, "uniform")
    policy = child_priors(steps, "policy")
    assert [(s.text, s.terminal) for s, _ in uniform] == [("A", False), ("B", False), ("A", True)]
    assert [p for _, p in uniform] == pytest.approx([1 / 3] * 3)
    assert [p for _, p in policy] == pytest.approx([2 / 4, 1 / 4, 1 / 4])  # sample frequencies


# --- whole searches ---------------------------------------------------------------------

TABLE = {"": ["A\n", "B\n"], "A\n": ["The answer is 7.\n"], "B\n": ["C\n", "The answer is 5.\n"]}
SCORES = {"A": 0.8, "B": 0.4, "The answer is 7.": 0.9, "C": 0.3, "The answer is 5.": 0.2}


def test_mcts_three_simulations_by_hand():
    gen, scorer = scripted(TABLE), TableScorer(SCORES)
    algo = MCTS(expansions=2, prior="policy", c_puct=1.0, use_verifier=True, max_simulations=3)
    [res] = algo.search([problem()], gen, scorer, budget(n=2))
    t = res.tree
    # sim 1 expands the root: A (P .5, PRM .8), B (P .5, PRM .4); root Q = .6.
    # sim 2: PUCT(A) = .8 + .5*sqrt(2)/2 > PUCT(B) = .4 + same -> expand A: two identical
    #   answer samples merge into one terminal child (P 1.0), verified correct -> value 1.0.
    # sim 3: A's subtree is finished (closed), so B is expanded: C (.3) and a wrong answer (0.0).
    assert [(n["id"], n["parent"], n["step"], n["prior"]) for n in t] == [
        (0, None, "", None), (1, 0, "A", 0.5), (2, 0, "B", 0.5), (3, 1, "The answer is 7.", 1.0),
        (4, 2, "C", 0.5), (5, 2, "The answer is 5.", 0.5)]
    assert [n["visits"] for n in t] == [5, 2, 3, 1, 1, 1]
    assert [n["value"] for n in t] == pytest.approx([
        (0.8 + 0.4 + 1.0 + 0.3 + 0.0) / 5,  # root: mean of every evaluation
        (0.8 + 1.0) / 2, (0.4 + 0.3 + 0.0) / 3, 1.0, 0.3, 0.0])
    assert [(n["terminal"], n["correct"]) for n in t[3:]] == [(True, True), (False, None), (True, False)]
    assert [(c.text, c.correct, c.score) for c in res.candidates] == [
        ("A\nThe answer is 7.\n", True, 0.9), ("B\nThe answer is 5.\n", False, 0.2)]
    assert res.best == 0 and res.extra["simulations"] == 3 and res.extra["candidate_nodes"] == [3, 5]
    assert gen.stats.calls == 3 and scorer.calls == [2, 1, 2]
    assert res.tokens == tok("A\nB\n" + "The answer is 7.\n" * 2 + "C\nThe answer is 5.\n") == gen.stats.tokens


def test_mcts_without_verifier_values_terminals_by_prm():
    # Test-time default: the reference answer never enters a value.
    [res] = MCTS(expansions=2, max_simulations=2).search([problem()], scripted(TABLE), TableScorer(SCORES),
                                                         budget(n=2))
    assert res.tree[3]["value"] == 0.9 and res.tree[1]["value"] == pytest.approx((0.8 + 0.9) / 2)


def test_mcts_runs_all_problems_in_lock_step():
    # p2's model only ever answers, so its tree is finished after one simulation.
    table = {**TABLE, ("Q2?", ""): ["The answer is 1.\n"]}
    gen, scorer = scripted(table), TableScorer(SCORES)
    problems = [problem("p1"), problem("p2", question="Q2?", answer="1"), problem("p3", question="Q3?")]
    results = MCTS(expansions=2, max_simulations=3).search(problems, gen, scorer, budget(n=2))
    assert [r.extra["simulations"] for r in results] == [3, 1, 3]
    assert gen.stats.calls == 3 and gen.stats.prompts == 3 + 2 + 2  # one batched call per iteration
    assert len(scorer.calls) == 3
    assert results[1].solved and len(results[1].tree) == 2


def test_mcts_stops_when_the_tree_is_exhausted():
    gen = scripted({}, default="The answer is 7.\n")
    [res] = MCTS(expansions=4).search([problem()], gen, TableScorer({}), budget(n=100))
    assert res.extra["simulations"] == 1 and gen.stats.calls == 1 and len(res.tree) == 2
    assert res.tree[1]["prior"] == 1.0 and res.solved


def test_mcts_token_budget_is_exact():
    # Steps never answer and both samples are the same step, so the tree is a chain.
    # Budget n * max_new_tokens = 2 * 40 = 80; one simulation may cost expansions *
    # max_step_tokens = 2 * 8 = 16, so simulation k (from 0) runs iff k * cost + 16 <= 80.
    # With 7-token steps (cost 14): k = 0..4 run (56 + 16 <= 80), 70 + 16 > 80 stops.
    step = "w w w w w w w\n"
    cost = 2 * tok(step)
    gen = scripted({}, default=step)
    [res] = MCTS(expansions=2).search([problem()], gen, TableScorer({}),
                                      budget(n=2, max_new_tokens=40, max_step_tokens=8, max_steps=50))
    assert res.extra["simulations"] == 64 // cost + 1 == 5
    assert res.tokens == res.extra["simulations"] * cost == gen.stats.tokens
    # Whatever the step length, it never overspends and stops only when another worst case won't fit.
    for words in range(1, 8):
        [res] = MCTS(expansions=2).search([problem()], scripted({}, default="w " * words + "\n"), TableScorer({}),
                                          budget(n=2, max_new_tokens=40, max_step_tokens=8, max_steps=50))
        assert 80 - 16 < res.tokens <= 80


def test_mcts_rollouts_with_verifier():
    # Step calls stop at "\n", so the root's samples are A and B; rollouts finish them.
    table = {"": ["A\nx\n", "B\nx\n"], "A\n": ["The answer is 7.\n"], "B\n": ["The answer is 3.\n"]}
    gen = scripted(table)
    algo = MCTS(expansions=2, evaluation="rollout", use_verifier=True, selection="majority", max_simulations=1)
    [res] = algo.search([problem()], gen, None, budget(n=4))
    assert [n["value"] for n in res.tree] == [0.5, 1.0, 0.0]
    assert [(c.text, c.correct) for c in res.candidates] == [("A\nThe answer is 7.\n", True),
                                                               ("B\nThe answer is 3.\n", False)]
    assert res.extra["candidate_nodes"] == [None, None]
    assert gen.stats.calls == 2  # one expansion call, one rollout call
    assert res.tokens == tok("A\nB\nThe answer is 7.\nThe answer is 3.\n") == gen.stats.tokens
    assert res.candidates[0].num_tokens == tok("A\nThe answer is 7.\n")


def test_mcts_mixed_and_scorer_valued_rollouts():
    table = {"": ["A\n", "B\n"], "A\n": ["The answer is 7.\n"], "B\n": ["The answer is 3.\n"]}
    scores = {"A": 0.6, "B": 0.2, "The answer is 7.": 0.9, "The answer is 3.": 0.7}
    scorer = TableScorer(scores)
    mixed = MCTS(expansions=2, evaluation="mixed", rollout_weight=0.25, use_verifier=True, max_simulations=1)
    [res] = mixed.search([problem()], scripted(table), scorer, budget(n=4))
    # A: .75 * .6 + .25 * 1 = .7;  B: .75 * .2 + .25 * 0 = .15
    assert [n["value"] for n in res.tree[1:]] == pytest.approx([0.7, 0.15])
    assert scorer.calls == [4]  # the 2 nodes and the 2 rollouts in one call
    # Without the verifier a rollout is worth its scorer value (last step: .9 and .7).
    rollout = MCTS(expansions=2, evaluation="rollout", max_simulations=1)
    [res] = rollout.search([problem()], scripted(table), TableScorer(scores), budget(n=4))
    assert [n["value"] for n in res.tree[1:]] == pytest.approx([0.9, 0.7])
    assert [c.score for c in res.candidates] == [0.9, 0.7] and res.best == 0


def test_mcts_rollouts_never_outgrow_max_steps():
    table = {"": ["A\n"], "A\n": ["B\nC\nThe answer is 7.\n"]}
    algo = MCTS(expansions=1, evaluation="rollout", use_verifier=True, selection="first", max_simulations=1)
    [res] = algo.search([problem()], scripted(table), None, budget(n=4, max_steps=3))
    assert res.candidates[0].text == "A\nB\nC\n" and res.candidates[0].correct is False
    assert res.tree[1]["value"] == 0.0


def test_mcts_dead_end_when_every_sample_is_empty():
    gen = scripted({}, default="\n")
    [res] = MCTS(expansions=2).search([problem()], gen, TableScorer({}), budget(n=100))
    assert res.candidates == [] and res.best is None and gen.stats.calls == 1
    assert res.tree == [tree_node(0, None, "", 0, value=0.0, visits=1)]
    assert res.extra["dropped_steps"] == 2


def test_mcts_validation():
    with pytest.raises(ValueError, match="needs a scorer"):
        MCTS(evaluation="prm").search([problem()], scripted({}), None, budget())
    with pytest.raises(ValueError, match="use_verifier=True"):
        MCTS(evaluation="rollout", selection="majority").search([problem()], scripted({}), None, budget())
    with pytest.raises(ValueError, match="more than the budget"):
        MCTS(expansions=4).search([problem()], scripted({}), TableScorer({}),
                                  budget(n=1, max_new_tokens=32, max_step_tokens=16))
    with pytest.raises(ValueError, match="prior"):
        MCTS(prior="visits")
    with pytest.raises(ValueError, match="evaluation"):
        MCTS(evaluation="value")
    assert ALGORITHMS["mcts"] is MCTS
    assert math.isclose(MCTS().c_puct, 1.0) and MCTS().use_verifier is False
