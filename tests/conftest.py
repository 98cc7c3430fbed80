"""Shared fixtures, by section. Session-scoped where building them costs seconds."""

from __future__ import annotations

import fcntl
import hashlib
import os
import random
import shutil
from dataclasses import asdict
from pathlib import Path

import pytest

from searchlearn.formatting import build_prompt, format_solution

# ---- process-wide settings ---------------------------------------------------------

# Tests share 2 cores with other processes; two torch threads spin-waiting on a busy
# core made a tiny-model SFT step ~8x slower (0.23 s vs 0.027 s) than one thread.
# Set before torch is first imported (it reads this once); override from the shell.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

# ---- parallel runs ---------------------------------------------------------------
# make test runs 2 pytest-xdist workers with --dist loadfile: a module runs whole on
# one worker, so its module fixtures are built once and tests that build on the one
# before (test_cache) keep their order. (--dist loadgroup with xdist_group marks still split
# a marked module over both workers here, pytest 9.2 / xdist 3.8; not investigated.)
#
# xdist hands out modules in collection order (make test passes --no-loadscope-reorder:
# by default it sorts modules by their test count, which put the one-test scale-out
# module, the longest, last and alone on one worker while the other sat idle). So the
# longest modules go first (seconds: the serial run recorded in the README);
# the rest keep their order, and every module keeps its own.
LONGEST_FIRST = [
    "flows/test_scale_out.py",  # 285 alone, ~510 beside another worker (Ray/Dask processes)
    "flows/test_variants.py",  # ~410
    "flows/test_reward_kinds.py",  # ~330
    "flows/test_cache.py",  # ~160
    "ops/test_deployments_e2e.py",  # ~160
    "flows/test_search_and_learn.py",  # ~100
    "integration/test_generation_vllm.py",  # ~90
    "flows/test_story.py",  # ~70
    "flows/test_resume.py",  # ~75
]


def pytest_collection_modifyitems(items):
    def rank(item) -> int:
        path = item.nodeid.split("::", 1)[0].removeprefix("tests/")
        return LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the order within a module and among the rest is kept

# ---- tiny data and model ----------------------------------------------------------

_NAMES = ["Ann", "Ben", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana"]
_ITEMS = ["apples", "books", "coins", "pens", "shells", "stamps"]


def make_demos(n: int = 64, seed: int = 0) -> list[dict]:
    """`n` one- or two-step word problems as {prompt, completion, answer} in the project's
    step format: enough structure for a tiny model to learn in a few dozen steps."""
    rng = random.Random(seed)
    demos = []
    for _ in range(n):
        name, item = rng.choice(_NAMES), rng.choice(_ITEMS)
        a, b, c = rng.randint(2, 30), rng.randint(2, 30), rng.randint(1, 9)
        if rng.random() < 0.5:
            question = f"{name} has {a} {item} and gets {b} more. How many {item} does {name} have?"
            steps, answer = [f"{a} + {b} = {a + b}."], a + b
        else:
            question = (f"{name} has {a} {item}, gets {b} more, then gives away {c}. "
                        f"How many {item} are left?")
            steps, answer = [f"{a} + {b} = {a + b}.", f"{a + b} - {c} = {a + b - c}."], a + b - c
        demos.append({"prompt": build_prompt(question), "completion": format_solution(steps, str(answer)),
                      "answer": str(answer)})
    return demos


@pytest.fixture(scope="session")
def tiny_demos() -> list[dict]:
    return make_demos()


@pytest.fixture(scope="session")
def tiny_corpus(tiny_demos) -> list[str]:
    return [d["prompt"] + d["completion"] for d in tiny_demos]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_corpus) -> str:
    """An untrained tiny model (the schema's default shape). Treat it as read-only."""
    from searchlearn.config.schema import TinyModelConfig
    from searchlearn.models.init import materialize_base

    out = tmp_path_factory.mktemp("tiny") / "base"
    return materialize_base({"source": "tiny", "tiny": asdict(TinyModelConfig())}, str(out), tiny_corpus)


# ---- the real SmolLM2 checkpoint (slow tests only) ---------------------------------

@pytest.fixture(scope="session")
def smollm2_dir(tmp_path_factory) -> str:
    """SmolLM2-135M converted from the packaged GGUF (~20 s, ~540 MB), cached across
    sessions in pytest's temp root and rebuilt whenever models/init.py changes."""
    from searchlearn.artifacts import is_complete_dir
    from searchlearn.config.schema import PolicyConfig
    from searchlearn.models import init

    key = hashlib.sha256(Path(init.__file__).read_bytes()).hexdigest()[:12]
    root = tmp_path_factory.getbasetemp().parent / "searchlearn-cache"
    if os.environ.get("PYTEST_XDIST_WORKER"):  # each worker's basetemp is one level deeper
        root = tmp_path_factory.getbasetemp().parent.parent / "searchlearn-cache"
    out = root / f"smollm2-{key}"
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:  # parallel workers: one builds, the others wait
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not is_complete_dir(out):
            for stale in root.glob("smollm2-*"):
                shutil.rmtree(stale, ignore_errors=True)
            init.materialize_base({**asdict(PolicyConfig()), "source": "smollm2_gguf"}, str(out))
    return str(out)


# ---- Prefect and a finished run (flow and UI tests) ---------------------------------

@pytest.fixture(scope="session")
def prefect_server():
    """A real Prefect test server, one per test session (it costs ~10 s to start)."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield PREFECT_API_URL.value()


@pytest.fixture(scope="session")
def finished_tiny_run(prefect_server, tmp_path_factory):
    """(run_dir, final state, history) of one `tiny` loop, as `searchlearn run tiny` runs
    it, left alone afterwards: what a user finds in the MLflow and Prefect UIs (tests/
    flows/test_story.py reads it through the stores, tests/ui/ through a browser). The
    history is read here, while no event loop runs (Playwright's would make
    `state.result()` a coroutine)."""
    from flows.search_and_learn import search_and_learn

    run_dir = tmp_path_factory.mktemp("tiny-story")
    flow = search_and_learn.with_options(result_storage=run_dir / "prefect-results")
    state = flow(experiment="tiny", overrides=[f"run_dir={run_dir}"], return_state=True)
    assert state.is_completed(), state
    return run_dir, state, state.result()
