"""Search results -> RFT traces, PRM step labels and preference pairs."""

from search_fixtures import TableScorer, budget, problem, scripted

from searchlearn.formatting import build_prompt, join_steps
from searchlearn.search.base import Candidate, SearchResult, node_path, tree_node
from searchlearn.learn.pairs import step_pairs
from searchlearn.search.export import step_values
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


def test_step_pairs_from_a_real_mcts_tree_share_their_prefix():
    table = {"": ["A\n", "B\n"], "A\n": ["The answer is 7.\n"], "B\n": ["C\n", "The answer is 5.\n"]}
    scores = {"A": 0.8, "B": 0.4, "C": 0.3, "The answer is 5.": 0.2}
    algo = MCTS(expansions=2, use_verifier=True, max_simulations=3)
    [res] = algo.search([problem()], scripted(table), TableScorer(scores), budget(n=2))
    pairs = step_pairs([res.to_dict()], min_margin=0.0, max_pairs_per_problem=8)
    solutions = {build_prompt(Q) + join_steps([n["step"] for n in node_path(res.tree, n["id"])]) for n in res.tree}
    for p in pairs:
        # prefix + chosen and prefix + rejected are both nodes of the tree: siblings.
        assert p["prompt"] in solutions | {build_prompt(Q)}
        assert p["prompt"] + p["chosen"] in solutions and p["prompt"] + p["rejected"] in solutions
    # A (Q .9) over B (Q .233...), then C (.3) over the wrong answer (0.0).
    assert [(p["chosen"], p["rejected"]) for p in pairs] == [("A\n", "B\n"), ("C\n", "The answer is 5.\n")]


