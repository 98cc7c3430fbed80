"""Every search algorithm end to end on a real (tiny) policy and a real (tiny) PRM:
batched HF generation, PRM scoring at step ends, exact token accounting, budgets."""

from __future__ import annotations

import pytest

from searchlearn.generation.hf import HFGenerator
from searchlearn.problems.arithmetic import make_splits
from searchlearn.reward import load_scorer
from searchlearn.search import ALGORITHMS, SearchBudget

BUDGET = SearchBudget(n=4, temperature=1.0, max_new_tokens=40, max_step_tokens=16, max_steps=3)
SETTINGS = {
    "best_of_n": {"selection": "weighted", "aggregation": "min"},
    "beam_search": {"expansions": 2},
    "dvts": {"expansions": 2},
    "mcts": {"expansions": 2, "max_simulations": 3},
}


@pytest.fixture(scope="module")
def problems():
    train, _ = make_splits(train_size=3, test_size=1, min_steps=1, max_steps=2, max_value=20, seed=1)
    return train


@pytest.fixture(scope="module")
def prm_dir(tmp_path_factory, tiny_model_dir, problems):
    """A PRM trained for a few steps from the tiny policy: real weights, real head."""
    from searchlearn.formatting import split_steps
    from searchlearn.reward.prm_train import train_prm

    rows = [{"question": p.question, "steps": split_steps(p.solution), "labels": [1.0] * len(split_steps(p.solution)),
             "problem_id": p.id, "source": "test"} for p in problems]
    rows.append({"question": problems[0].question, "steps": ["1 + 1 = 3.", "The answer is 3."],
                 "labels": [0.0, 0.0], "problem_id": "bad", "source": "test"})
    out = tmp_path_factory.mktemp("prm") / "prm"
    train_prm(tiny_model_dir, rows, {"max_steps": 2, "batch_size": 4, "learning_rate": 1e-3}, str(out))
    return str(out)


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_algorithm_on_tiny_model(name, tiny_model_dir, prm_dir, problems):
    generator = HFGenerator(tiny_model_dir, batch_size=32, seed=0)
    scorer = load_scorer("prm", prm_dir)
    results = ALGORITHMS[name](**SETTINGS[name]).search(problems, generator, scorer, BUDGET)
    assert [r.problem_id for r in results] == [p.id for p in problems]
    # Every generated token is accounted to exactly one problem.
    assert sum(r.tokens for r in results) == generator.stats.tokens > 0
    for r in results:
        assert r.algorithm == name and r.candidates
        assert r.best is not None and 0 <= r.best < len(r.candidates)
        assert all(c.correct is not None and c.score is not None for c in r.candidates)
        if name == "best_of_n":
            assert len(r.candidates) == BUDGET.n
        else:
            assert r.tree and r.tree[0]["parent"] is None
            if name != "mcts":  # step-wise budget: at most n step samples per step
                assert r.extra["step_samples"] <= BUDGET.n * BUDGET.max_steps
            else:  # token budget
                assert r.tokens <= BUDGET.n * BUDGET.max_new_tokens
    # Lock-step batching: one generate call per search step (MCTS: per simulation)
    # for all problems together, never one per problem.
    max_calls = {"best_of_n": 1, "beam_search": BUDGET.max_steps, "dvts": BUDGET.max_steps,
                 "mcts": SETTINGS["mcts"]["max_simulations"]}[name]
    assert 1 <= generator.stats.calls <= max_calls


def test_a_stage_loads_the_reward_model_with_its_step_check(prm_dir, problems, tmp_path):
    """stages.common.load_scorer_ref applies the check its reference carries
    (stages.stage.scorer_ref_of): a slip and every step after it score 0 with the real
    tiny PRM; the same steps keep the model's values without the check."""
    from searchlearn.stages.common import load_scorer_ref
    from searchlearn.stages.stage import scorer_ref_of

    (tmp_path / "model").symlink_to(prm_dir)  # a train-reward-model output holds its model in model/
    ref = {"path": str(tmp_path), "sha": "x", "kind": "prm"}
    steps = ["Start with 4: 4 + 2 = 6.", "6 * 3 = 19.", "19 - 1 = 18.", "The answer is 18."]
    plain = load_scorer_ref(scorer_ref_of(ref, "none").value).score([problems[0].question], [steps])[0]
    checked = load_scorer_ref(scorer_ref_of(ref, "calculator").value).score([problems[0].question], [steps])[0]
    assert checked[0] == plain[0] > 0 and checked[1:] == [0.0, 0.0, 0.0] and min(plain[1:]) > 0
