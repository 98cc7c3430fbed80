"""The loop with the other pillars switched on, each run twice: the first executes
every stage, the second is fully Cached."""

from __future__ import annotations

import pytest

from flowkit import run_flow, task_states

pytestmark = pytest.mark.slow

CASES = {
    # PRM + ORM retrained each round, PRM-guided beam search, reranking evaluation.
    "prm-beam": ("tiny_prm", []),
    "dpo": ("tiny", ["rounds=1", "learn.algorithm=dpo"]),
    "grpo": ("tiny", ["rounds=1", "learn.algorithm=grpo"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_variant_runs_then_is_fully_cached(prefect_server, tmp_path, case):
    experiment, overrides = CASES[case]
    first = run_flow(experiment, tmp_path, *overrides)
    assert first.is_completed(), first
    history = first.result()
    assert all(s == "Completed" for names in task_states(first).values() for s in names)
    last = history[-1]
    if case == "prm-beam":
        assert {"label-steps", "train-reward-model", "evaluate-reranking"} <= set(task_states(first))
        assert history[1]["search.algorithm"] == "best_of_n"  # no reward model exists yet in round 1
        assert history[2]["search.algorithm"] == "beam_search"  # round 2 is guided by round 1's PRM
        assert last["labels.rows"] > 0 and last["prm.steps"] > 0 and last["orm.steps"] > 0
        assert {"rerank.majority.n4", "rerank.prm_min.n4", "rerank.prm_last.n4", "rerank.orm.n4",
                "rerank.random.n1"} <= set(last)
    if case == "dpo":
        assert last["learn.dpo.pairs"] == last["learn.dpo.pairs_solution"] + last["learn.dpo.pairs_step"]
    if case == "grpo":
        assert last["learn.train.steps"] == 4
        assert "learn.grpo.reward_first" in last
    second = run_flow(experiment, tmp_path, *overrides)
    assert second.is_completed()
    assert all(s == "Cached" for names in task_states(second).values() for s in names), task_states(second)
