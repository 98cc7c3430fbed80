"""The benchmarks read the flow's stage outputs, not whatever a benchmark wrote last.

bench/prm_quickstart.py's `latest` (used by every bench script that reads a finished
run) prefers the output a finished round run recorded in the run dir's MLflow store
(tracking.log_round's `ref.<name>` tags) over the newest one on disk: benchmarks write
outputs of the same stages into the run dir. A real MLflow SQLite store, no mocks.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from prm_quickstart import latest, recorded  # noqa: E402  (bench/ is on sys.path)

from searchlearn.artifacts import COMPLETE_MARKER  # noqa: E402
from searchlearn.stages.common import STAGE_FILE  # noqa: E402
from searchlearn.tracking import mlflow_client  # noqa: E402


def output(run_dir: Path, stage: str, key: str, age: int) -> Path:
    """A completed stage output, `age` seconds old."""
    out = run_dir / "artifacts" / stage / key
    out.mkdir(parents=True)
    (out / STAGE_FILE).write_text(json.dumps({}))
    (out / COMPLETE_MARKER).write_text("")
    stamp = 1_800_000_000 - age
    os.utime(out, (stamp, stamp))
    return out


def round_run(run_dir: Path, round_index: int, refs: dict[str, Path], status: str = "FINISHED") -> None:
    """A flow's round run as tracking.start_round_run / log_round leave it."""
    client = mlflow_client(f"sqlite:///{run_dir / 'mlflow.db'}")
    exp = client.get_experiment_by_name("searchlearn") or client.get_experiment(
        client.create_experiment("searchlearn", artifact_location=(run_dir / "mlartifacts").as_uri()))
    run = client.create_run(exp.experiment_id, tags={"searchlearn.round": str(round_index)})
    for name, path in refs.items():
        client.set_tag(run.info.run_id, f"ref.{name}", str(path))
    client.set_terminated(run.info.run_id, status)


@pytest.fixture
def run_dir(tmp_path):
    d = tmp_path / "run"
    d.mkdir()
    return d


def test_the_recorded_output_wins_over_a_newer_bench_output(run_dir):
    flows = output(run_dir, "implicit_step-r3", "flow", age=100)
    output(run_dir, "implicit_step-r3", "bench", age=10)  # a benchmark's model, written later
    init = output(run_dir, "policy-init", "flow", age=200)
    handwritten = output(run_dir, "eval-handwritten-r3", "flow", age=100)
    output(run_dir, "eval-handwritten-r3", "bench", age=10)
    round_run(run_dir, 0, {"policy": init})
    round_run(run_dir, 3, {"implicit_step": flows, "eval.handwritten": handwritten})

    assert latest(run_dir, "implicit_step-r3")["path"] == str(flows)
    assert latest(run_dir, "eval-handwritten-r3")["path"] == str(handwritten)
    assert recorded(run_dir, "policy-init") == init


def test_the_newest_finished_round_run_counts(run_dir):
    old, new, crashed = (output(run_dir, "policy-r1", k, age=a) for k, a in (("old", 300), ("new", 200), ("x", 100)))
    round_run(run_dir, 1, {"policy": old})
    round_run(run_dir, 1, {"policy": new})
    round_run(run_dir, 1, {"policy": crashed}, status="FAILED")  # a round that never finished

    assert recorded(run_dir, "policy-r1") == new


def test_without_a_record_the_newest_output(run_dir):
    output(run_dir, "problems", "a", age=100)
    newest = output(run_dir, "problems", "b", age=10)
    assert recorded(run_dir, "problems") is None  # no store yet
    round_run(run_dir, 1, {"policy": output(run_dir, "policy-r1", "p", age=50)})

    assert recorded(run_dir, "problems") is None  # the flow records no problems ref
    assert latest(run_dir, "problems")["path"] == str(newest)


def test_a_recorded_output_since_deleted_falls_back(run_dir):
    gone = output(run_dir, "rerank-r2", "gone", age=100)
    kept = output(run_dir, "rerank-r2", "kept", age=50)
    round_run(run_dir, 2, {"rerank": gone})
    (gone / COMPLETE_MARKER).unlink()

    assert recorded(run_dir, "rerank-r2") is None
    assert latest(run_dir, "rerank-r2")["path"] == str(kept)
