"""Kill a real `searchlearn run` mid-round, then re-run: completed stages come back
Cached, the interrupted stage reruns, and no half-written artifact is trusted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flowkit import run_flow, task_states

pytestmark = pytest.mark.slow


def _wait_for(predicate, proc, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            raise AssertionError(f"run exited (rc={proc.returncode}) before the kill point")
        time.sleep(0.2)
    raise AssertionError("kill point not reached in time")


def test_killed_run_resumes_from_last_completed_task(prefect_server, tmp_path):
    run_dir = tmp_path / "run"
    env = {**os.environ, "PREFECT_API_URL": prefect_server, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "flows.cli", "run", "tiny", f"run_dir={run_dir}", "rounds=1"]
    proc = subprocess.Popen(cmd, env=env, cwd=Path(__file__).resolve().parents[2],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        # Kill as soon as round 1's search is complete: learning is then under way.
        searched = lambda: any((run_dir / "artifacts").glob("search-r1/*/_COMPLETE"))  # noqa: E731
        _wait_for(searched, proc, timeout_s=600)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not any((run_dir / "artifacts").glob("eval-r1/*/_COMPLETE")), "killed too late to test resume"

    state = run_flow("tiny", run_dir, "rounds=1")
    assert state.is_completed(), state
    states = task_states(state)
    for name in ("prepare-problems", "init-base-model", "sft-on-demos", "search-for-data"):
        assert states[name] == ["Cached"], (name, states)
    assert sorted(states["evaluate-policy"]) == ["Cached", "Completed"]  # round 0 was done; round 1 was not
    assert states["learn-policy"] == ["Completed"]
    # Whatever the kill left half-written was never renamed into place.
    for stage in (run_dir / "artifacts").iterdir():
        for out in stage.iterdir():
            if not out.name.startswith("."):
                assert (out / "_COMPLETE").is_file(), out
