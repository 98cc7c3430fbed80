"""A cache you can trust, on `tiny` with its problems read from JSONL files under
tmp_path: --refresh-cache recomputes every stage and replaces its output in place;
after that a plain re-run is fully Cached; refilling the train file in place (same
path, new rows) recomputes every stage; a cached stage whose output was deleted or
edited since is rebuilt; a second run on a busy run_dir fails at once."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flowkit import run_flow, task_states

pytestmark = pytest.mark.slow

STAGES = {"prepare-problems", "init-base-model", "sft-on-demos", "prepare-eval-problems", "evaluate-policy",
          "evaluate-handwritten", "search-shard", "search-for-data", "learn-policy"}


def gsm8k_rows(n: int, start: int, phrase: str) -> list[dict]:
    """One-step problems of the size tiny solves a few of after SFT."""
    rows = []
    for i in range(start, start + n):
        a, b = i % 7 + 1, i // 7 % 5 + 1
        rows.append({"question": f"{phrase} {a} pens and gets {b} more ({i}). How many pens?",
                     "answer": f"{a} + {b} = {a + b}\n#### {a + b}"})
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def outputs(run_dir: Path) -> dict[str, int]:
    """Every stage output directory -> when it was completed (its marker is written last)."""
    return {f"{stage.name}/{out.name}": (out / "_COMPLETE").stat().st_mtime_ns
            for stage in (run_dir / "artifacts").iterdir() for out in stage.iterdir()}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("data")
    train, test = root / "train.jsonl", root / "test.jsonl"
    write_jsonl(train, gsm8k_rows(176, 0, "Ann has"))
    write_jsonl(test, gsm8k_rows(24, 1000, "Ann has"))
    overrides = ["rounds=1", "problems.source=gsm8k_jsonl", f"problems.train_path={train}",
                 f"problems.test_path={test}"]
    return {"train": train, "overrides": overrides, "run_dir": tmp_path_factory.mktemp("run")}


def newest(run_dir: Path, stage: str) -> Path:
    """The stage's output the last run used: the most recently completed one."""
    return max((run_dir / "artifacts" / stage).iterdir(), key=lambda out: (out / "_COMPLETE").stat().st_mtime_ns)


def states_of(state) -> dict[str, list[str]]:
    assert state.is_completed(), state
    states = task_states(state)
    assert set(states) == STAGES, states
    return states


def all_are(states: dict, name: str) -> bool:
    return all(s == name for names in states.values() for s in names)


def test_refresh_recomputes_every_stage_in_place_and_a_plain_rerun_is_cached(prefect_server, files):
    from prefect.settings import PREFECT_TASKS_REFRESH_CACHE, temporary_settings

    run_dir = files["run_dir"]
    assert all_are(states_of(run_flow("tiny", run_dir, *files["overrides"])), "Completed")
    before = outputs(run_dir)
    started = time.time_ns()
    with temporary_settings({PREFECT_TASKS_REFRESH_CACHE: True}):  # what `searchlearn run --refresh-cache` sets
        refreshed = states_of(run_flow("tiny", run_dir, *files["overrides"]))
    assert all_are(refreshed, "Completed"), refreshed
    after = outputs(run_dir)
    # Every stage wrote a new output...
    assert {name.split("/")[0] for name, done in after.items() if done >= started} == {
        name.split("/")[0] for name in after}
    # ...in place where its key stayed the same (the stages upstream of any training).
    # SFT's content hash changes with its timing metrics, so stages after it get new keys.
    for name in ("problems", "base-model", "policy-init"):
        [only] = [n for n in after if n.startswith(name + "/")]
        assert only in before and after[only] >= started
    assert not list((run_dir / "artifacts").glob("*/.*.tmp"))  # nothing set aside
    assert all_are(states_of(run_flow("tiny", run_dir, *files["overrides"])), "Cached")


def test_refilling_the_train_file_in_place_recomputes_everything_downstream(prefect_server, files):
    run_dir = files["run_dir"]
    assert all_are(states_of(run_flow("tiny", run_dir, *files["overrides"])), "Cached")
    write_jsonl(files["train"], gsm8k_rows(176, 0, "Ben holds"))  # same path, new content
    states = states_of(run_flow("tiny", run_dir, *files["overrides"]))
    # The hand-written eval set is read from its own file: not downstream of the train file.
    assert states.pop("prepare-eval-problems") == ["Cached"]
    assert all_are(states, "Completed"), states


def test_a_cached_stage_whose_output_was_deleted_or_edited_is_rebuilt(prefect_server, files):
    """Prefect's cache record outlives the directory it names: a hit must not hand
    downstream stages an output that is gone or no longer what was hashed."""
    import shutil

    run_dir = files["run_dir"]
    assert all_are(states_of(run_flow("tiny", run_dir, *files["overrides"])), "Cached")
    policy = newest(run_dir, "policy-r1")  # the earlier tests left older ones beside it
    shutil.rmtree(policy)  # a cleaned-up artifacts folder
    search = newest(run_dir, "search-r1")
    results = search / "results.jsonl"
    original = results.read_bytes()
    results.write_bytes(original[: len(original) // 2])  # a file cut short by hand
    states = states_of(run_flow("tiny", run_dir, *files["overrides"]))
    # Each hit was refused and its stage rebuilt (a second task run, in the same flow run).
    assert sorted(states["learn-policy"]) == sorted(states["search-for-data"]) == ["Cached", "Completed"], states
    assert states["sft-on-demos"] == ["Cached"] and states["search-shard"] == ["Cached"], states
    assert (policy / "_COMPLETE").is_file() and (policy / "model").is_dir()
    assert results.read_bytes() == original  # rebuilt from the same (cached) shard
    assert all_are(states_of(run_flow("tiny", run_dir, *files["overrides"])), "Cached")


def test_a_second_run_on_a_busy_run_dir_fails_at_once(prefect_server, files):
    hold = ("import sys, time\nfrom searchlearn.rundir import locked\nwith locked(sys.argv[1]):\n"
            "    print('held', flush=True)\n    time.sleep(120)\n")
    holder = subprocess.Popen([sys.executable, "-c", hold, str(files["run_dir"])], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        state = run_flow("tiny", files["run_dir"], *files["overrides"])
        assert state.is_failed()
        assert f"is in use by pid {holder.pid}" in state.message, state.message
        assert task_states(state) == {}  # no stage ran
    finally:
        holder.kill()
        holder.wait()
