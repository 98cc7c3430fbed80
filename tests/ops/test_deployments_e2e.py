"""The deployments end to end, with real parts: `prefect server start` on a free loopback
port (its own PREFECT_HOME and SQLite DB), the `process` pool, `prefect deploy --all` of
deployments/prefect.yaml and a worker, all through deployments/Makefile.ops; then flow
runs created through the API with custom parameters, as the UI's run form does.

Every wait is bounded, and the worker and the server (process groups: make, prefect,
uvicorn, the flow-run subprocesses) are stopped whatever happens."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
MAKE = ["make", "--no-print-directory", "-f", str(ROOT / "deployments" / "Makefile.ops"),
        f"BIN={Path(sys.executable).parent}"]
START_TIMEOUT = 180  # a first server start migrates its DB; two shared cores make that slow
RUN_TIMEOUT = 360
LOOP, EVAL, DATA = "search-and-learn/loop", "evaluate-model/nightly-champion", "generate-data/search-only"
CHAMPION = "models:/searchlearn-policy@champion"


# ---- processes: each in its own group, always stopped -------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop_group(proc: subprocess.Popen, grace: float = 20) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left of it after `grace`."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        proc.poll()
        try:
            os.killpg(proc.pid, 0)  # anyone left in the group?
        except ProcessLookupError:
            break
        time.sleep(0.5)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(10)


class Stack:
    """A Prefect server, pool, deployments and worker for one test module."""

    def __init__(self, home: Path):
        self.home = home
        port = _free_port()
        self.api_url = f"http://127.0.0.1:{port}/api"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        self.env.update(
            PREFECT_HOME=str(home), PREFECT_API_URL=self.api_url, PREFECT_PORT=str(port),
            PREFECT_API_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{home / 'prefect.db'}",
            PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_UI_ENABLED="false",
            PREFECT_WORKER_QUERY_SECONDS="2", PWD=str(ROOT),
        )
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, target: str) -> None:
        with (self.home / f"{target}.log").open("wb") as log:
            self.procs[target] = subprocess.Popen([*MAKE, target], cwd=ROOT, env=self.env, stdout=log,
                                                  stderr=subprocess.STDOUT, start_new_session=True)

    def make(self, *args: str, timeout: float = 180) -> str:
        proc = subprocess.Popen([*MAKE, *args], cwd=ROOT, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop_group(proc, grace=5)
            raise AssertionError(f"make {' '.join(args)} took over {timeout} s") from None
        assert proc.returncode == 0, f"make {' '.join(args)} failed:\n{out}"
        return out

    def log(self, target: str, chars: int = 6000) -> str:
        path = self.home / f"{target}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.procs["server"].poll() is None, f"server exited:\n{self.log('server')}"
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=5) as r:
                    if json.load(r) is True:
                        return
            time.sleep(1)
        raise AssertionError(f"server not healthy after {START_TIMEOUT} s:\n{self.log('server')}")

    def client(self):
        from prefect.client.orchestration import SyncPrefectClient

        return SyncPrefectClient(self.api_url)

    def wait_final(self, flow_run_id, timeout: float = RUN_TIMEOUT):
        deadline = time.monotonic() + timeout
        with self.client() as client:
            while time.monotonic() < deadline:
                run = client.read_flow_run(flow_run_id)
                if run.state and run.state.is_final():
                    return run
                assert self.procs["worker"].poll() is None, f"worker exited:\n{self.log('worker')}"
                time.sleep(2)
            client.set_flow_run_state(flow_run_id, _cancelling(), force=True)  # the worker kills it
        raise AssertionError(f"flow run {flow_run_id} not final after {timeout} s:\n{self.log('worker')}")

    def stop(self) -> None:
        for target in ("worker", "server"):
            if target in self.procs:
                _stop_group(self.procs[target])


def _cancelling():
    from prefect.states import Cancelling

    return Cancelling()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = Stack(tmp_path_factory.mktemp("prefect-home"))
    try:
        stack.start("server")
        stack.wait_healthy()
        stack.make("pool")
        stack.make("deploy", timeout=300)
        stack.start("worker")
        yield stack
    finally:
        stack.stop()


def run_deployment(stack: Stack, name: str, parameters: dict, results: Path | None = None):
    """Create a flow run with custom parameters (as the UI's run form does) and wait for it.
    `results` redirects the task-result cache, keeping the project's runs/ untouched."""
    with stack.client() as client:
        deployment = client.read_deployment_by_name(name)
        job_variables = None
        if results:  # a run's job variables replace the deployment's `env` as a whole
            job_variables = {"env": {**deployment.job_variables["env"],
                                     "PREFECT_RESULTS_LOCAL_STORAGE_PATH": str(results)}}
        run = client.create_flow_run_from_deployment(deployment.id, parameters=parameters,
                                                     job_variables=job_variables)
    return stack.wait_final(run.id)


def task_states(stack: Stack, flow_run_id, expected: int, timeout: float = 60) -> dict[str, list[str]]:
    """Task-run name prefix -> state names (task runs reach the server as events: wait for them)."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    deadline = time.monotonic() + timeout
    with stack.client() as client:
        while True:
            runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
            if (len(runs) >= expected and all(r.state and r.state.is_final() for r in runs)) \
                    or time.monotonic() > deadline:
                break
            time.sleep(1)
    states: dict[str, list[str]] = {}
    for run in runs:
        states.setdefault(run.name.rsplit("-", 1)[0], []).append(run.state.name if run.state else "?")
    return states


def assert_completed(stack: Stack, run) -> None:
    completed = run.state.is_completed()
    assert completed, f"{run.name}: {run.state.name}: {run.state.message}\n--- worker log ---\n{stack.log('worker')}"


def mlflow_client(run_dir: Path):
    import mlflow

    uri = f"sqlite:///{run_dir / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    return mlflow.MlflowClient(uri), uri


# ---- the tests ------------------------------------------------------------------------

def test_deployments_have_typed_forms_a_working_dir_and_an_inactive_nightly_schedule(stack):
    from prefect.exceptions import PrefectHTTPStatusError

    from searchlearn.config import available_experiments

    with stack.client() as client:
        loop, evaluate, data = (client.read_deployment_by_name(n) for n in (LOOP, EVAL, DATA))
        for deployment in (loop, evaluate, data):
            assert deployment.work_pool_name == "searchlearn-process"
            assert deployment.pull_steps == [
                {"prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}}]
            assert deployment.job_variables["env"]["PREFECT_RESULTS_LOCAL_STORAGE_PATH"] == \
                str(ROOT / "runs" / "prefect-results")
            props = deployment.parameter_openapi_schema["properties"]
            # The run form offers the shipped variants; a YAML file goes in experiment_file.
            assert props["experiment"]["type"] == "string"
            assert props["experiment"]["enum"] == available_experiments()
            assert "conf/experiment/" in props["experiment"]["description"]
            assert "YAML" in props["experiment_file"]["description"]
            assert {"type": "array", "items": {"type": "string"}} in props["overrides"]["anyOf"]
            assert props["overrides"]["description"]
        assert evaluate.parameter_openapi_schema["properties"]["split"]["enum"] == ["test", "train"]
        assert evaluate.parameters["model"] == CHAMPION
        assert data.parameter_openapi_schema["properties"]["rounds"]["minimum"] == 1
        [schedule] = evaluate.schedules
        assert schedule.schedule.cron == "0 3 * * *" and schedule.active is False
        assert not loop.schedules and not data.schedules
        # The server validates parameters against the form's schema before any run exists.
        with pytest.raises(PrefectHTTPStatusError, match="0 is less than the minimum of 1"):
            client.create_flow_run_from_deployment(data.id, parameters={"rounds": 0})
        with pytest.raises(PrefectHTTPStatusError, match="'no-such-experiment' is not one of"):
            client.create_flow_run_from_deployment(loop.id, parameters={"experiment": "no-such-experiment"})


def test_a_bad_override_from_the_cli_trigger_fails_the_run_at_start(stack):
    out = stack.make("trigger", "EXPERIMENT=tiny", "OVERRIDES=search.nn=3", timeout=120)
    flow_run_id = re.search(r"UUID: ([0-9a-f-]{36})", out).group(1)
    run = stack.wait_final(flow_run_id, timeout=180)
    assert run.state.is_failed(), run.state
    assert "ConfigError: command-line override: bad config key 'search.nn'" in run.state.message


@pytest.fixture(scope="module")
def tiny_loop(stack, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("tiny-deployed")
    run = run_deployment(stack, LOOP, {"experiment": "tiny", "overrides": ["rounds=1", f"run_dir={run_dir}"]},
                         results=run_dir / "prefect-results")
    assert_completed(stack, run)
    return run_dir


def test_the_tiny_loop_runs_and_registers_the_best_round_as_champion(tiny_loop):
    from searchlearn import registry
    from searchlearn.artifacts import sha256_path

    client, uri = mlflow_client(tiny_loop)
    exp = client.get_experiment_by_name("searchlearn")
    runs = client.search_runs([exp.experiment_id])
    [parent] = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert parent.info.status == "FINISHED" and parent.data.tags["searchlearn.experiment"] == "tiny"
    rounds = {int(r.data.params["round"]): r for r in runs if r.data.tags.get("mlflow.parentRunId")}
    assert sorted(rounds) == [0, 1]

    champion = client.get_model_version_by_alias("searchlearn-policy", "champion")
    assert champion.run_id == parent.info.run_id
    best = max(rounds, key=lambda i: (rounds[i].data.metrics["eval.greedy_acc"], i))
    fetched = registry.download_policy(uri, f"models:/searchlearn-policy/{champion.version}",
                                       tiny_loop / "check" / "model")
    assert sha256_path(fetched) == sha256_path(Path(rounds[best].data.tags["ref.policy"]) / "model")


def test_champion_evaluation_and_search_only_generation_reuse_the_loop(stack, tiny_loop):
    overrides = [f"run_dir={tiny_loop}"]
    evaluation = run_deployment(stack, EVAL, {"model": CHAMPION, "experiment": "tiny", "overrides": overrides},
                                results=tiny_loop / "prefect-results")
    assert_completed(stack, evaluation)
    data = run_deployment(stack, DATA, {"experiment": "tiny", "overrides": overrides, "rounds": 1},
                          results=tiny_loop / "prefect-results")
    assert_completed(stack, data)

    client, _ = mlflow_client(tiny_loop)
    exp = client.get_experiment_by_name("searchlearn")
    [eval_run] = client.search_runs([exp.experiment_id], "tags.`searchlearn.flow` = 'evaluate-model'")
    assert eval_run.info.status == "FINISHED" and eval_run.data.tags["searchlearn.model"] == CHAMPION
    assert 0.0 <= eval_run.data.metrics["eval.greedy_acc"] <= 1.0
    [data_run] = client.search_runs([exp.experiment_id], "tags.`searchlearn.flow` = 'generate-data'")
    [search_round] = client.search_runs(
        [exp.experiment_id], f"tags.mlflow.parentRunId = '{data_run.info.run_id}'")
    assert Path(search_round.data.tags["ref.search"], "results.jsonl").is_file()
    # Round 1's search uses the initial policy in both flows: the loop's cached results.
    loop_round = client.search_runs([exp.experiment_id], "tags.`searchlearn.round` = '1'",
                                    order_by=["attributes.start_time ASC"])[0]
    assert search_round.data.tags["ref.search"] == loop_round.data.tags["ref.search"]
    states = task_states(stack, data.id, expected=5)
    assert states == {"prepare-problems": ["Cached"], "init-base-model": ["Cached"], "sft-on-demos": ["Cached"],
                      "search-shard": ["Cached"], "search-for-data": ["Cached"]}, states


def test_evaluate_model_takes_a_bare_checkpoint_the_train_split_or_a_gsm8k_jsonl(stack, tiny_loop, tmp_path):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.evaluate_model import evaluate_model

    checkpoint = next((tiny_loop / "artifacts").glob("policy-r1/*/model"))
    jsonl = tmp_path / "gsm8k.jsonl"
    jsonl.write_text("".join(json.dumps({"question": f"Ann has {a} pens and gets 2 more. How many pens?",
                                         "answer": f"{a} + 2 = {a + 2}\n#### {a + 2}"}) + "\n" for a in (3, 5, 7)))
    flow = evaluate_model.with_options(result_storage=tiny_loop / "prefect-results")
    overrides = [f"run_dir={tiny_loop}", "eval.k=0", "eval.num_problems=5"]
    with temporary_settings({PREFECT_API_URL: stack.api_url}):
        on_train = flow(model=str(checkpoint), experiment="tiny", split="train", overrides=overrides)
        on_jsonl = flow(model=str(checkpoint), experiment="tiny", jsonl=str(jsonl), overrides=overrides)
    assert on_train["eval.problems"] == 5 and on_jsonl["eval.problems"] == 3
    client, _ = mlflow_client(tiny_loop)
    exp = client.get_experiment_by_name("searchlearn")
    runs = client.search_runs([exp.experiment_id], f"tags.`searchlearn.model` = '{checkpoint}'")
    assert sorted(r.data.tags["searchlearn.split"] for r in runs) == sorted(["train", str(jsonl)])
