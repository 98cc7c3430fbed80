"""Kill a real `searchlearn run` with SIGKILL mid-round, then re-run: completed stages
come back Cached, the interrupted one reruns, and nothing of the killed run is left
behind: no temporary Prefect server, no MLflow parent run stuck RUNNING, no temp
dirs. While it runs, a second `searchlearn run` on the same run_dir fails at once.

The killed run starts its own temporary Prefect server (no PREFECT_API_URL), as a
user's run does; only the CLI process is killed, not its process group."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flowkit import mlflow_client, run_flow, task_states

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _wait_for(predicate, proc, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            raise AssertionError(f"run exited (rc={proc.returncode}) before the kill point")
        time.sleep(0.1)
    raise AssertionError("kill point not reached in time")


def _child_cpu_s() -> float:
    """CPU seconds (user + system) of this process's children waited for so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _children(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    return kids


def _running(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _leftovers(run_dir: Path) -> list[Path]:
    return [*(run_dir / "tmp").glob("*"), *(run_dir / "artifacts").glob("*/.*.tmp")]


@pytest.fixture(scope="module")
def killed(tmp_path_factory):
    """A run SIGKILLed while it trains round 1's policy (an `sft-work-*` dir exists);
    what a second run on the same run_dir said meanwhile."""
    run_dir = tmp_path_factory.mktemp("killed") / "run"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API_URL")}
    env["OMP_NUM_THREADS"] = "1"
    cli = [sys.executable, "-m", "flows.cli", "run", "tiny", f"run_dir={run_dir}", "rounds=1"]
    proc = subprocess.Popen(cli, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(lambda: (run_dir / ".lock").is_file() and (run_dir / ".lock").stat().st_size, proc, 120)
        start, cpu = time.perf_counter(), _child_cpu_s()
        second = subprocess.run(cli, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
        second_s, second_cpu_s = time.perf_counter() - start, _child_cpu_s() - cpu
        # Learning is under way once round 1's search is done and the trainer has its work dir.
        _wait_for(lambda: any((run_dir / "artifacts").glob("search-r1/*/_COMPLETE"))
                  and any((run_dir / "tmp").glob("sft-work-*")), proc, 900)
        servers = _children(proc.pid)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 15
    while any(_running(pid) for pid in servers) and time.monotonic() < deadline:
        time.sleep(0.1)
    return {"run_dir": run_dir, "pid": proc.pid, "servers": servers, "second": second, "second_s": second_s,
            "second_cpu_s": second_cpu_s,
            "left": _leftovers(run_dir)}


def test_a_second_run_on_the_same_run_dir_fails_at_once_naming_the_first(killed):
    second = killed["second"]
    assert second.returncode == 3, second.stderr
    assert f"is in use by pid {killed['pid']}" in second.stderr and "tiny" in second.stderr
    # "At once": the refusal's own CPU time (the killed run and another test share the
    # 2 cores, so its wall time says more about them); the wall clock only rules out a wait.
    assert killed["second_cpu_s"] < 2.0 and killed["second_s"] < 15.0, killed


def test_the_temporary_server_dies_with_the_killed_run(killed):
    assert killed["servers"], "the run had started no server"
    assert not [pid for pid in killed["servers"] if _running(pid)]


def test_the_rerun_resumes_and_leaves_nothing_of_the_killed_run(prefect_server, killed):
    run_dir = killed["run_dir"]
    assert killed["left"], "the kill left no temp dirs, so this test would prove nothing"
    assert not any(run_dir.glob("artifacts/eval-r1/*/_COMPLETE")), "killed too late to test resume"
    state = run_flow("tiny", run_dir, "rounds=1")
    assert state.is_completed(), state
    states = task_states(state)
    for name in ("prepare-problems", "init-base-model", "sft-on-demos", "search-for-data"):
        assert states[name] == ["Cached"], (name, states)
    assert sorted(states["evaluate-policy"]) == ["Cached", "Completed"]  # round 0 was done; round 1 was not
    assert states["learn-policy"] == ["Completed"]
    assert _leftovers(run_dir) == []
    client = mlflow_client(run_dir)
    runs = client.search_runs([client.get_experiment_by_name("searchlearn").experiment_id])
    assert sorted(r.info.status for r in runs if "mlflow.parentRunId" not in r.data.tags) == ["FINISHED", "KILLED"]
    assert not [r for r in runs if r.info.status == "RUNNING"]
    for stage in (run_dir / "artifacts").iterdir():  # whatever was half-written was never renamed into place
        for out in stage.iterdir():
            assert (out / "_COMPLETE").is_file(), out
