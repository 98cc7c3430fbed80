"""`searchlearn run` with bad input fails before Prefect starts, in under 2 s, with one
line naming the key, file or line (issue 13, item 6: each defect found by hand).
The CLI runs as a subprocess, timed from its start to its exit."""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# What a refused run may cost: CPU seconds of the CLI process (user + system), which do
# not depend on what else shares the cores (tests run two at a time); the wall clock is
# only checked for a hang (a wait on a server or a lock burns no CPU).
LIMIT_S = 2.0
HANG_S = 15.0


def run_cli(*args: str) -> tuple[int, str, float]:
    """(exit code, output, CPU seconds) of one `searchlearn run`."""
    env = {**os.environ, "PREFECT_API_URL": ""}  # as on a fresh machine: no server configured
    start, before = time.perf_counter(), child_cpu_s()
    proc = subprocess.run([sys.executable, "-m", "flows.cli", "run", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert time.perf_counter() - start < HANG_S, f"a refused run hung: {proc.stderr[-500:]}"
    return proc.returncode, proc.stdout + proc.stderr, child_cpu_s() - before


def child_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # children waited for so far
    return usage.ru_utime + usage.ru_stime


def gsm8k_rows(n: int, start: int = 0) -> list[dict]:
    return [{"question": f"Ann has {i} pens and buys 2 more. How many pens?", "answer": f"{i} + 2 = {i + 2}\n#### {i + 2}"}
            for i in range(start, start + n)]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def data(tmp_path) -> dict:
    """Files big enough for tiny: 160 demos + 16 searched problems, 24 held out."""
    return {"train": write_jsonl(tmp_path / "train.jsonl", gsm8k_rows(176)),
            "test": write_jsonl(tmp_path / "test.jsonl", gsm8k_rows(24, start=1000))}


def jsonl_args(tmp_path, train: Path, test: Path) -> list[str]:
    return [f"run_dir={tmp_path / 'run'}", "problems.source=gsm8k_jsonl", f"problems.train_path={train}",
            f"problems.test_path={test}"]


def assert_fails_fast(tmp_path, args: list[str], *named: str) -> str:
    rc, out, seconds = run_cli("tiny", *args)
    lines = [line for line in out.splitlines() if line.strip()]
    assert rc == 2, out
    assert len(lines) == 1 and lines[0].startswith("config error: "), out
    for name in named:
        assert name in lines[0], (name, lines[0])
    assert seconds < LIMIT_S, f"took {seconds:.2f} CPU s: {lines[0]}"
    assert not (tmp_path / "run").exists(), "the run dir was created"
    assert "prefect" not in out.lower(), out
    return lines[0]


# ---- data files ---------------------------------------------------------------------

@pytest.mark.parametrize("row, why", [
    ("{not json", "not valid JSON"),
    (json.dumps({"question": "Q?", "answer": "4"}), "no '#### <number>' line"),
    (json.dumps({"question": "Q?", "answer": "so #### many"}), "not a number"),
])
def test_a_bad_row_is_named_by_file_and_line(tmp_path, data, row, why):
    lines = data["train"].read_text().splitlines()
    lines.insert(41, row)  # line 42
    data["train"].write_text("\n".join(lines) + "\n")
    assert_fails_fast(tmp_path, jsonl_args(tmp_path, data["train"], data["test"]), f"{data['train']}:42", why)


def test_an_empty_train_file_is_named(tmp_path, data):
    empty = write_jsonl(tmp_path / "empty.jsonl", [])
    assert_fails_fast(tmp_path, jsonl_args(tmp_path, empty, data["test"]), "problems.train_path", str(empty),
                      "0 problems")


def test_too_few_rows_for_the_demos_and_the_search_pool(tmp_path, data):
    small = write_jsonl(tmp_path / "small.jsonl", gsm8k_rows(100))
    assert_fails_fast(tmp_path, jsonl_args(tmp_path, small, data["test"]), str(small), "100 problems",
                      "init.num_demos=160", "search.problems_per_round=16", "need 176")


def test_too_few_held_out_rows_for_eval(tmp_path, data):
    args = jsonl_args(tmp_path, data["train"], data["test"]) + ["eval.num_problems=50"]
    assert_fails_fast(tmp_path, args, "problems.test_path", "24 problems", "eval.num_problems=50", "need 50")
    # Every held-out evaluation reads the split's first problems: the largest one counts.
    args = jsonl_args(tmp_path, data["train"], data["test"]) + ["eval.scaling.enabled=true"]
    assert_fails_fast(tmp_path, args, "eval.num_problems=24, eval.scaling.num_problems=50 need 50")
    from searchlearn.config import load_config
    from searchlearn.preflight import check_problems

    check_problems(load_config("tiny", [*jsonl_args(tmp_path, data["train"], data["test"]),
                                        "eval.scaling.enabled=true", "eval.scaling.num_problems=8"]))


def test_a_50_mb_single_line_file_fails_at_once(tmp_path, data):
    huge = tmp_path / "huge.jsonl"
    huge.write_text(json.dumps({"question": "x" * 50_000_000, "answer": "#### 1"}) + "\n")
    assert_fails_fast(tmp_path, jsonl_args(tmp_path, huge, data["test"]), f"{huge}:1", "line longer than")


def test_arithmetic_sizes_are_checked_too(tmp_path):
    assert_fails_fast(tmp_path, [f"run_dir={tmp_path / 'run'}", "problems.train_size=100"],
                      "problems.train_size=100", "need 176")


# ---- numeric ranges -----------------------------------------------------------------

@pytest.mark.parametrize("override, message", [
    ("init.train.batch_size=0", "init.train.batch_size must be > 0, got 0"),
    ("search.top_p=5", "search.top_p must be in (0, 1], got 5"),
    ("prm.rollouts=0", "prm.rollouts must be > 0, got 0"),
    ("search.n=0", "search.n must be > 0, got 0"),
    ("eval.scaling.budgets=[2,0]", "eval.scaling.budgets must be > 0, got 0"),
    ("search.max_new_tokens=-5", "search.max_new_tokens must be > 0"),
    ("learn.rft.train.learning_rate=-0.001", "learn.rft.train.learning_rate must be > 0"),
    ("prm.train.learning_rate=0", "prm.train.learning_rate must be > 0"),
    ("prm.train.pad_to_multiple_of=0", "prm.train.pad_to_multiple_of must be > 0, got 0"),
    ("learn.grpo.num_generations=1", "learn.grpo.num_generations must be >= 2"),
    ("prm.eval_fraction=1", "prm.eval_fraction must be in [0, 1)"),
])
def test_numbers_out_of_range_are_named(tmp_path, override, message):
    assert_fails_fast(tmp_path, [f"run_dir={tmp_path / 'run'}", override], message)


# ---- tracking.uri and run_dir -------------------------------------------------------

def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket closes


def test_an_unreachable_tracking_server(tmp_path):
    uri = f"http://127.0.0.1:{_closed_port()}"
    assert_fails_fast(tmp_path, [f"run_dir={tmp_path / 'run'}", f"tracking.uri={uri}"], "tracking.uri", uri,
                      "not reachable")


def test_a_sqlite_store_under_a_missing_directory_is_not_created(tmp_path):
    missing = tmp_path / "no" / "such"
    assert_fails_fast(tmp_path, [f"run_dir={tmp_path / 'run'}", f"tracking.uri=sqlite:///{missing}/mlflow.db"],
                      "tracking.uri", str(missing), "does not exist")
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize("where", ["not_a_database", "directory", "unwritable"])
def test_an_unwritable_sqlite_store(tmp_path, where):
    if where == "not_a_database":
        db = tmp_path / "mlflow.db"
        db.write_text("this is not sqlite\n" * 100)
    elif where == "directory":
        db = tmp_path / "mlflow.db"
        db.mkdir()
    else:
        db = Path("/sys/mlflow.db")  # refuses new files, even for root
    assert_fails_fast(tmp_path, [f"run_dir={tmp_path / 'run'}", f"tracking.uri=sqlite:///{db}"], "tracking.uri",
                      str(db.parent) if where == "unwritable" else str(db))


def test_a_relative_sqlite_uri_is_refused(tmp_path):
    assert_fails_fast(tmp_path, [f"run_dir={tmp_path / 'run'}", "tracking.uri=sqlite:///mlflow.db"], "tracking.uri",
                      "absolute")


def test_a_run_dir_that_is_a_file(tmp_path):
    (tmp_path / "run").write_text("")
    rc, out, seconds = run_cli("tiny", f"run_dir={tmp_path / 'run'}")
    assert rc == 2 and out.strip().startswith("config error: run_dir") and "not a directory" in out
    assert seconds < LIMIT_S


def test_a_run_dir_that_cannot_be_created(tmp_path):
    out = assert_fails_fast(tmp_path, ["run_dir=/sys/searchlearn-run"], "run_dir", "/sys")
    assert not Path("/sys/searchlearn-run").exists(), out
