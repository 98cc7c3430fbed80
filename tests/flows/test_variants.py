"""The loop with the other pillars switched on, each run twice: the first executes
every stage, the second is fully Cached."""

from __future__ import annotations

import json

import pytest

from flowkit import mlflow_client, run_flow, task_states

pytestmark = pytest.mark.slow

CASES = {
    # PRM + ORM retrained each round, PRM-guided beam search, reranking evaluation,
    # and the compute-matched comparison of search methods.
    "prm-beam": ("tiny_prm", ["eval.scaling.enabled=true", "eval.scaling.budgets=[2,4]",
                              "eval.scaling.num_problems=8"]),
    "dpo": ("tiny", ["rounds=1", "learn.algorithm=dpo"]),
    # GRPO with the verifier + format reward, shaped by the round's freshly trained PRM.
    "grpo": ("tiny_prm", ["rounds=1", "learn.algorithm=grpo", "learn.grpo.prm_weight=0.5"]),
    # Every training stage (SFT, PRM, DPO with its reference model) under accelerate
    # launch with 2 data-parallel processes (gloo on this CPU machine).
    "ddp": ("tiny_prm", ["rounds=1", "learn.algorithm=dpo", "prm.train_orm=false",
                         "execution.train_processes=2"]),
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
        assert last["labels.rows"] > 0 and last["prm.train.steps"] > 0 and last["orm.train.steps"] > 0
        assert {"rerank.majority.n4", "rerank.prm_min.n4", "rerank.prm_last.n4", "rerank.orm.n4",
                "rerank.random.n1"} <= set(last)
        scaled = {k for k in last if k.startswith("scaling.") and k.endswith(".acc")}
        assert scaled == {f"scaling.{m}.n{n}.acc" for m in ("bon_majority", "bon_weighted", "beam_search", "mcts")
                          for n in (2, 4)} | {"scaling.dvts.n4.acc"}  # DVTS needs n >= expansions (4)
        assert 0 < last["scaling.beam_search.n4.tokens"] and "scaling.mcts.n4.speed_vs_bon" in last
        _assert_round_artifacts(tmp_path, 2, {"scaling/table.json", "scaling/accuracy_vs_tokens.png",
                                              "rerank/table.json"})
    if case == "dpo":
        assert last["learn.dpo.pairs"] == last["learn.dpo.pairs_solution"] + last["learn.dpo.pairs_step"]
    if case == "grpo":
        assert last["learn.train.steps"] == 4
        assert "learn.grpo.reward_first" in last
        assert last["learn.grpo.prm_used"] == 1 and last["learn.grpo.reward_functions"] == 3
    if case == "ddp":
        [init] = (tmp_path / "artifacts" / "policy-init").iterdir()
        assert json.loads((init / "stage.json").read_text())["sft.train.processes"] == 2
        assert last["prm.train.processes"] == 2 and last["prm.train.steps"] > 0
        assert last["learn.train.processes"] == 2 and last["learn.dpo.pairs"] > 0
    second = run_flow(experiment, tmp_path, *overrides)
    assert second.is_completed()
    assert all(s == "Cached" for names in task_states(second).values() for s in names), task_states(second)


def _assert_round_artifacts(run_dir, round_index: int, expected: set[str]) -> None:
    client = mlflow_client(run_dir)
    exp = client.get_experiment_by_name("searchlearn")
    [run] = client.search_runs([exp.experiment_id], f"tags.`searchlearn.round` = '{round_index}'")
    found = {f.path for d in ("scaling", "rerank") for f in client.list_artifacts(run.info.run_id, d)}
    assert expected <= found, found
