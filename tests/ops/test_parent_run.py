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
    return tracking._client(tracking.tracking_uri(cfg)).get_run(run_id).info.status


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
