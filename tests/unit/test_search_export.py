"""Search results -> RFT traces, PRM step labels and preference pairs."""

from search_fixtures import TableScorer, budget, problem, scripted

from searchlearn.formatting import build_prompt, join_steps
from searchlearn.search.base import Candidate, SearchResult, node_path, tree_node
from searchlearn.search.export import preference_pairs, solution_pairs, step_values, verified_traces
from searchlearn.search.mcts import MCTS

Q = "Tom has 3 apples and buys 4. How many?"


def cand(text, correct):
    return Candidate(text=text, num_tokens=len(text.split()), correct=correct)


def result(cands=(), tree=None, pid="p1", algorithm="mcts"):
    return SearchResult(problem_id=pid, question=Q, reference="7", candidates=list(cands), best=0, tokens=0,
                        algorithm=algorithm, tree=tree)


def hand_tree():
    """root -> a (.9) -> answer 7 (1.0, correct);  root -> b (.2) -> answer 8 (0.0) and
    "Hmm" (.5, not terminal);  root -> d (.9), a value tie with a."""
    return [
        tree_node(0, None, "", 0, value=0.5, visits=6),
        tree_node(1, 0, "3 + 4 = 7", 1, value=0.9, visits=2, prior=0.4),
        tree_node(2, 0, "3 + 4 = 8", 1, value=0.2, visits=3, prior=0.4),
        tree_node(3, 1, "The answer is 7.", 2, value=1.0, visits=1, prior=1.0, terminal=True, correct=True),
        tree_node(4, 2, "The answer is 8.", 2, value=0.0, visits=1, prior=0.5, terminal=True, correct=False),
        tree_node(5, 2, "Hmm", 2, value=0.5, visits=1, prior=0.5),
        tree_node(6, 0, "4 + 3 = 7", 1, value=0.9, visits=1, prior=0.2),
    ]


def test_node_path():
    assert [n["id"] for n in node_path(hand_tree(), 4)] == [2, 4]
    assert node_path(hand_tree(), 0) == []


def test_verified_traces_dedupe_cap_and_trim():
    right = "3 + 4 = 7\nThe answer is 7.\n"
    r = result([cand(right + "rambling on\n", True), cand(right, True), cand("x\nThe answer is 8.\n", False),
                cand("The answer is 8.\nThe answer is 7.\n", True), cand("4 + 3 = 7\nThe answer is 7.\n", True)])
    rows = verified_traces([r], max_per_problem=4, dedupe=True)
    # Rambling is cut, the duplicate dropped, wrong-then-right rejected.
    assert rows == [{"problem_id": "p1", "prompt": build_prompt(Q), "completion": right},
                    {"problem_id": "p1", "prompt": build_prompt(Q), "completion": "4 + 3 = 7\nThe answer is 7.\n"}]
    assert [x["completion"] for x in verified_traces([r.to_dict()], max_per_problem=2, dedupe=False)] == [right, right]
    assert len(verified_traces([r], max_per_problem=1)) == 1


def test_step_values_are_paths_to_terminal_nodes():
    rows = step_values([result(tree=hand_tree())])
    assert rows == [
        {"problem_id": "p1", "question": Q, "steps": ["3 + 4 = 7", "The answer is 7."], "labels": [0.9, 1.0],
         "source": "mcts"},
        {"problem_id": "p1", "question": Q, "steps": ["3 + 4 = 8", "The answer is 8."], "labels": [0.2, 0.0],
         "source": "mcts"},
    ]
    tree = hand_tree()
    tree[2]["value"] = None  # an unvalued node on the path: that solution has no labels
    assert [r["steps"][-1] for r in step_values([result(tree=tree)])] == ["The answer is 7."]
    assert step_values([result(tree=None)]) == []


def test_preference_pairs_share_their_prefix():
    pairs = preference_pairs([result(tree=hand_tree())], min_margin=0.0, max_pairs_per_problem=8)
    # Root siblings: (a .9, b .2) .7, (a, d) tie -> none, (b .2, d .9) .7; b's children: (8 .0, Hmm .5) .5.
    assert [(p["chosen"], p["rejected"], round(p["margin"], 6)) for p in pairs] == [
        ("3 + 4 = 7\n", "3 + 4 = 8\n", 0.7), ("4 + 3 = 7\n", "3 + 4 = 8\n", 0.7), ("Hmm\n", "The answer is 8.\n", 0.5)]
    assert [p["prompt"] for p in pairs] == [build_prompt(Q)] * 2 + [build_prompt(Q) + "3 + 4 = 8\n"]
    assert all(p["level"] == "step" and p["problem_id"] == "p1" for p in pairs)
    assert len(preference_pairs([result(tree=hand_tree())], min_margin=0.6)) == 2
    # 0.7 - 0.5 = 0.19999999999999996 still passes min_margin=0.2.
    tree = hand_tree()
    tree[5]["value"], tree[4]["value"] = 0.7, 0.5
    assert len(preference_pairs([result(tree=tree)], min_margin=0.2)) == 3
    # The cap keeps the largest margins.
    assert [p["margin"] for p in preference_pairs([result(tree=hand_tree())], max_pairs_per_problem=1)] == [
        pairs[0]["margin"]]


def test_preference_pairs_from_a_real_mcts_tree():
    table = {"": ["A\n", "B\n"], "A\n": ["The answer is 7.\n"], "B\n": ["C\n", "The answer is 5.\n"]}
    scores = {"A": 0.8, "B": 0.4, "C": 0.3, "The answer is 5.": 0.2}
    algo = MCTS(expansions=2, use_verifier=True, max_simulations=3)
    [res] = algo.search([problem()], scripted(table), TableScorer(scores), budget(n=2))
    pairs = preference_pairs([res.to_dict()])
    solutions = {build_prompt(Q) + join_steps([n["step"] for n in node_path(res.tree, n["id"])]) for n in res.tree}
    for p in pairs:
        # prefix + chosen and prefix + rejected are both nodes of the tree: siblings.
        assert p["prompt"] in solutions | {build_prompt(Q)}
        assert p["prompt"] + p["chosen"] in solutions and p["prompt"] + p["rejected"] in solutions
    # A (Q .9) over B (Q .233...), then C (.3) over the wrong answer (0.0).
    assert [(p["chosen"], p["rejected"]) for p in pairs] == [("A\n", "B\n"), ("C\n", "The answer is 5.\n")]


def test_solution_pairs():
    r = result([cand("a\nThe answer is 7.\n", True), cand("b\nThe answer is 7.\n", True),
                cand("c\nThe answer is 8.\n", False), cand("d\nThe answer is 9.\n", False),
                cand("c\nThe answer is 8.\n", False), cand("e\n", None)])
    pairs = solution_pairs([r], max_pairs_per_problem=3)
    # Anti-diagonal order: (a,c), then (a,d) and (b,c).
    assert [(p["chosen"][0], p["rejected"][0]) for p in pairs] == [("a", "c"), ("a", "d"), ("b", "c")]
    assert all(p["level"] == "solution" and p["margin"] == 1.0 and p["prompt"] == build_prompt(Q) for p in pairs)
    assert len(solution_pairs([r], max_pairs_per_problem=0)) == 4
    assert solution_pairs([result([cand("a\nThe answer is 7.\n", True)])]) == []
