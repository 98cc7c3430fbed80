"""The run directory: one run at a time (a second fails at once, naming the holder; a
SIGKILLed holder leaves no stale lock), a killed run's leftovers removed at the next
start, and --refresh-cache's replace-in-place of a stage output."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from searchlearn.artifacts import atomic_dir, is_complete_dir
from searchlearn.rundir import RunDirBusy, claim, clean_leftovers, locked
from searchlearn.stages.common import produce, refreshing

HOLD = "import sys, time\nfrom searchlearn.rundir import locked\nwith locked(sys.argv[1]):\n" \
       "    print('held', flush=True)\n    time.sleep(120)\n"


@pytest.fixture
def holder(tmp_path):
    """Another process holding tmp_path/run's lock."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / "run")], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    yield proc
    proc.kill()
    proc.wait()


def test_a_second_run_fails_at_once_naming_the_holder(tmp_path, holder):
    start = time.perf_counter()
    with pytest.raises(RunDirBusy) as busy:
        with locked(tmp_path / "run"):
            pass
    assert time.perf_counter() - start < 0.5
    message = str(busy.value)
    assert f"pid {holder.pid} on {socket.gethostname()} since " in message and "-c" in message
    assert str((tmp_path / "run").resolve()) in message


def test_a_killed_holder_leaves_no_stale_lock(tmp_path, holder):
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with locked(tmp_path / "run"):  # the kernel dropped the flock with the process
        pass


def test_the_lock_is_reentrant_within_a_process_and_released_after(tmp_path):
    with locked(tmp_path / "run"), locked(tmp_path / "run"):  # the CLI, then the flow it runs
        pass
    proc = subprocess.run([sys.executable, "-c", HOLD.replace("time.sleep(120)", "pass"), str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "held", proc.stderr


def test_leftovers_of_a_killed_run_are_removed_and_finished_outputs_kept(tmp_path):
    run = tmp_path / "run"
    done = run / "artifacts" / "policy-init" / "abc"
    (done / "model").mkdir(parents=True)
    (done / "_COMPLETE").write_text("ok\n")
    half = run / "artifacts" / "policy-init" / ".abc.x1y2.tmp"
    (half / "model").mkdir(parents=True)
    half_file = run / "artifacts" / "search-r1" / ".results.jsonl.k3.tmp"
    half_file.parent.mkdir(parents=True)
    half_file.write_text("{")
    work = run / "tmp" / "sft-work-abc123"
    work.mkdir(parents=True)
    removed = clean_leftovers(run)
    assert set(removed) == {half, half_file, work}
    assert is_complete_dir(done) and not half.exists() and not half_file.exists() and not work.exists()


def test_claim_cleans_then_keeps_this_process_temp_files_under_the_run_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("VLLM_RPC_BASE_PATH", raising=False)
    run = tmp_path / "run"
    (run / "tmp" / "sft-work-old").mkdir(parents=True)
    system_tmp = tempfile.gettempdir()
    with claim(run) as root:
        assert root == str(run.resolve())
        assert not (run / "tmp" / "sft-work-old").exists()
        with tempfile.TemporaryDirectory(prefix="sft-work-") as work:  # as learn/sft.py makes them
            assert Path(work).parent == run / "tmp"
        assert os.environ["VLLM_RPC_BASE_PATH"] == system_tmp  # sockets need short paths
        tempfile.mkdtemp(prefix="torchinductor_")  # a library's cache, never removed by its owner
    assert tempfile.gettempdir() == system_tmp
    assert list((run / "tmp").iterdir()) == []  # emptied when the run ends
    assert "VLLM_RPC_BASE_PATH" not in os.environ


def test_refresh_replaces_a_complete_output_in_place(tmp_path):
    out = tmp_path / "artifacts" / "stage" / "key"
    builds = []

    def build(tmp: Path) -> dict:
        builds.append(tmp)
        (tmp / "data.txt").write_text(f"build {len(builds)}")
        return {"n": len(builds)}

    assert produce(out, build)["n"] == 1
    assert produce(out, build)["n"] == 1 and len(builds) == 1  # reused
    inode = out.stat().st_ino
    with refreshing(True):
        assert produce(out, build)["n"] == 2
    assert (out / "data.txt").read_text() == "build 2" and out.stat().st_ino != inode
    assert sorted(p.name for p in out.parent.iterdir()) == ["key"]  # the old one is gone, nothing aside


def test_a_failed_rebuild_keeps_the_old_output(tmp_path):
    out = tmp_path / "key"
    with atomic_dir(out) as tmp:
        (tmp / "data.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_dir(out) as tmp:
            (tmp / "data.txt").write_text("new")
            raise RuntimeError("killed mid-build")
    assert (out / "data.txt").read_text() == "old" and os.listdir(tmp_path) == ["key"]
