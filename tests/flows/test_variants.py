"""The loop with the other pillars switched on, one test per variant. Each runs twice:
the first run executes every stage, the second is fully Cached. (The reward-model kinds
are in test_reward_kinds.py, so the two halves can run on the two test workers.)"""

from __future__ import annotations

import json

import pytest

from flowkit import assert_learned, mlflow_client, run_twice

pytestmark = pytest.mark.slow


def test_prm_beam_search_with_reranking_and_the_scaling_comparison(prefect_server, tmp_path):
    """The default reward model (implicit_step, confidence reward, Monte-Carlo labels) +
    an ORM retrained each round, reward-guided beam search, reranking evaluation, and the
    compute-matched comparison of search methods."""
    history, states = run_twice(tmp_path, "tiny_prm", "eval.scaling.enabled=true", "eval.scaling.budgets=[2,4]",
                                "eval.scaling.num_problems=8")
    last = history[-1]
    assert {"label-steps", "train-reward-model", "evaluate-reranking", "evaluate-scaling"} <= set(states)
    assert history[1]["search.algorithm"] == "best_of_n"  # no reward model exists yet in round 1
    assert history[2]["search.algorithm"] == "beam_search"  # round 2 is guided by round 1's PRM
    assert last["labels.rows"] > 0 and last["labels.rollouts"] > 0  # Monte-Carlo labels, the default
    assert last["implicit_step.train.steps"] > 0 and last["orm.train.steps"] > 0
    assert {"rerank.majority.n4", "rerank.implicit_step_min.n4", "rerank.implicit_step_last.n4", "rerank.orm.n4",
            "rerank.random.n1"} <= set(last)
    scaled = {k for k in last if k.startswith("scaling.") and k.endswith(".acc")}
    assert scaled == {f"scaling.{m}.n{n}.acc" for m in ("bon_majority", "bon_weighted", "beam_search", "mcts")
                      for n in (2, 4)} | {"scaling.dvts.n4.acc"}  # DVTS needs n >= expansions (4)
    assert 0 < last["scaling.beam_search.n4.tokens"] and "scaling.mcts.n4.speed_vs_bon" in last
    assert last["implicit_step.train.last_loss"] < last["implicit_step.train.first_loss"]
    # the confidence reward's scale, fixed by round 1's model, carried into round 2's warm start
    assert history[1]["implicit_step.reward.scale"] == last["implicit_step.reward.scale"] > 0
    assert_learned(tmp_path, history, 2)
    _assert_round_artifacts(tmp_path, 2, {"scaling/table.json", "scaling/accuracy_vs_tokens.png",
                                          "rerank/table.json"})


def test_dpo_on_solution_and_step_pairs(prefect_server, tmp_path):
    history, _ = run_twice(tmp_path, "tiny", "rounds=1", "learn.algorithm=dpo")
    last = history[-1]
    assert last["learn.dpo.pairs"] == last["learn.dpo.pairs_solution"] + last["learn.dpo.pairs_step"]
    assert_learned(tmp_path, history, 1)


def test_grpo_shaped_by_the_rounds_prm(prefect_server, tmp_path):
    """GRPO with the verifier + format reward, shaped by the round's freshly trained PRM."""
    history, _ = run_twice(tmp_path, "tiny_prm", "rounds=1", "learn.algorithm=grpo", "learn.grpo.prm_weight=0.5")
    last = history[-1]
    assert last["learn.train.steps"] == 4
    assert "learn.grpo.reward_first" in last
    assert last["learn.grpo.prm_used"] == 1 and last["learn.grpo.reward_functions"] == 3
    assert_learned(tmp_path, history, 1, loss_falls=False)


def test_every_training_stage_under_accelerate_launch(prefect_server, tmp_path):
    """SFT, the reward model and DPO (with its reference model) in 2 data-parallel processes (gloo on CPU)."""
    history, _ = run_twice(tmp_path, "tiny_prm", "rounds=1", "learn.algorithm=dpo", "prm.compare_kinds=[]",
                           "execution.train_processes=2")
    last = history[-1]
    [init] = (tmp_path / "artifacts" / "policy-init").iterdir()
    assert json.loads((init / "stage.json").read_text())["sft.train.processes"] == 2
    assert last["implicit_step.train.processes"] == 2 and last["implicit_step.train.steps"] > 0
    assert last["learn.train.processes"] == 2 and last["learn.dpo.pairs"] > 0


def _assert_round_artifacts(run_dir, round_index: int, expected: set[str]) -> None:
    """Both flow runs (the first and the cached one) log the round's tables and plots."""
    client = mlflow_client(run_dir)
    exp = client.get_experiment_by_name("searchlearn")
    runs = client.search_runs([exp.experiment_id], f"tags.`searchlearn.round` = '{round_index}'")
    assert len(runs) == 2
    for run in runs:
        found = {f.path for d in ("scaling", "rerank") for f in client.list_artifacts(run.info.run_id, d)}
        assert expected <= found, found
