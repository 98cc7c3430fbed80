"""The flow's MLflow parent run always ends: FINISHED, FAILED when the flow raises,
KILLED on Ctrl-C, and a run whose process was killed outright (still RUNNING) is
closed as KILLED when the next run on the same run_dir starts. Real SQLite store."""

from __future__ import annotations

import pytest

from searchlearn import tracking
from searchlearn.config import load_config


@pytest.fixture
def cfg(tmp_path):
    return load_config("tiny", [f"run_dir={tmp_path / 'run'}", f"tracking.uri=sqlite:///{tmp_path}/mlflow.db"])


def status(cfg, run_id: str) -> str:
    return tracking.mlflow_client(tracking.tracking_uri(cfg)).get_run(run_id).info.status


def test_the_parent_run_ends_finished_failed_or_killed(cfg):
    with tracking.parent_run(cfg, "ok") as ok:
        pass
    with pytest.raises(ValueError):
        with tracking.parent_run(cfg, "fails") as failed:
            raise ValueError("a stage failed")
    with pytest.raises(KeyboardInterrupt):
        with tracking.parent_run(cfg, "interrupted") as interrupted:
            raise KeyboardInterrupt
    assert [status(cfg, h["run_id"]) for h in (ok, failed, interrupted)] == ["FINISHED", "FAILED", "KILLED"]


def test_runs_left_running_by_a_killed_process_are_closed_at_the_next_start(cfg, tmp_path):
    dead = tracking.start_parent_run(cfg, "killed -9")  # never finished, as after SIGKILL
    dead_round = tracking.start_round_run(dead, 1)
    other_dir = load_config("tiny", [f"run_dir={tmp_path / 'other'}", f"tracking.uri={tracking.tracking_uri(cfg)}"])
    elsewhere = tracking.start_parent_run(other_dir, "running elsewhere")  # another run_dir: not ours to close
    with tracking.parent_run(cfg, "next") as nxt:
        assert [status(cfg, r) for r in (dead["run_id"], dead_round)] == ["KILLED", "KILLED"]
    assert status(cfg, elsewhere["run_id"]) == "RUNNING" and status(cfg, nxt["run_id"]) == "FINISHED"


def test_a_failing_flow_ends_its_round_run_in_progress_too(cfg):
    with pytest.raises(ValueError):
        with tracking.parent_run(cfg, "fails mid-round") as handle:
            round_run = tracking.start_round_run(handle, 1)
            raise ValueError("a stage failed")
    assert [status(cfg, r) for r in (handle["run_id"], round_run)] == ["FAILED", "FAILED"]


def test_params_are_those_of_the_sections_that_run():
    plain = tracking.params_that_run(load_config("tiny"))
    assert plain["learn.algorithm"] == "rft" and "learn.rft.train.learning_rate" in plain
    assert "search.n" in plain and "policy.tiny.hidden_size" in plain
    assert not [k for k in plain if k.startswith(("learn.grpo.", "learn.dpo.", "search.mcts.", "search.beam_search."))]
    assert [k for k in plain if k.startswith("prm.")] == ["prm.enabled"]
    assert [k for k in plain if k.startswith("eval.scaling.")] == ["eval.scaling.enabled"]
    other = tracking.params_that_run(load_config("tiny", ["learn.algorithm=grpo", "search.algorithm=mcts",
                                                          "prm.enabled=true", "eval.scaling.enabled=true"]))
    assert "learn.grpo.beta" in other and "search.mcts.c_puct" in other and "prm.kind" in other
    assert "eval.scaling.budgets" in other and not [k for k in other if k.startswith("learn.rft.")]
