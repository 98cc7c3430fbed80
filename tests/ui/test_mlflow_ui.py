"""The MLflow UI as a user sees it, in a real browser: `mlflow ui` on the store a
finished `tiny` run left (tests/conftest.py), read by headless Chromium through
Playwright. The browser is Debian's `chromium` (never a Playwright download); the
module skips, saying so, where it or Playwright is missing."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("SEARCHLEARN_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
if not CHROMIUM:
    pytest.skip("Debian's chromium is not installed (apt-get install chromium; .ci/run installs it)",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (the dev extra has it)")

ML_VIEW = "?workflowType=machine_learning"
START_TIMEOUT = 180  # first start migrates nothing here, but two shared cores make it slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(url: str) -> bool:
    with contextlib.suppress(OSError):
        with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
            return r.status == 200
    return False


@pytest.fixture(scope="module")
def mlflow_ui(finished_tiny_run, tmp_path_factory):
    """`mlflow ui` on the finished run's store, on a free loopback port; stopped with its
    process group whatever happens. Job execution (huey workers) is off: a UI needs none."""
    run_dir, _, _ = finished_tiny_run
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("mlflow-ui") / "ui.log"
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "mlflow", "ui", "--backend-store-uri",
                                 f"sqlite:///{run_dir / 'mlflow.db'}", "--host", "127.0.0.1", "--port", str(port),
                                 "--workers", "1"], env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _healthy(url):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(1)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(20)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def page():
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(60_000)
        yield page
        browser.close()


@pytest.fixture(scope="module")
def store(finished_tiny_run):
    import mlflow

    from searchlearn.champion import best_round

    run_dir, _, history = finished_tiny_run
    uri = f"sqlite:///{run_dir / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name("searchlearn")
    [parent] = client.search_runs([exp.experiment_id], "tags.`mlflow.parentRunId` IS NULL")
    champion = client.get_model_version_by_alias("searchlearn-policy", "champion")
    return {"exp": exp.experiment_id, "parent": parent.info.run_id, "history": history,
            "best": best_round(history), "model_id": champion.source.removeprefix("models:/")}


def _row_cells(page, first_cell: str) -> list[str]:
    row = page.locator("[role=row]").filter(has=page.get_by_text(first_cell, exact=True)).first
    return row.locator("[role=cell]").all_inner_texts()


def test_the_champion_page_shows_its_own_rounds_accuracy(mlflow_ui, page, store):
    page.goto(f"{mlflow_ui}/#/experiments/{store['exp']}/models/{store['model_id']}{ML_VIEW}")
    page.get_by_text("eval.greedy_acc", exact=True).first.wait_for()
    cells = _row_cells(page, "eval.greedy_acc")
    assert float(cells[-1]) == pytest.approx(store["history"][store["best"]]["eval.greedy_acc"]), cells
    assert page.get_by_text(f"Round {store['best']}", exact=True).first.is_visible()  # the description


def test_the_summary_table_shows_every_rounds_numbers(mlflow_ui, page, store):
    page.goto(f"{mlflow_ui}/#/experiments/{store['exp']}/runs/{store['parent']}/artifacts/summary.json{ML_VIEW}")
    page.get_by_text("eval_greedy_acc", exact=True).first.wait_for()
    headers = page.locator("[role=columnheader]").all_inner_texts()
    assert "eval_greedy_acc" in headers and not [h for h in headers if "." in h]
    greedy = headers.index("eval_greedy_acc")
    rows = [r.locator("[role=cell]").all_inner_texts() for r in page.locator("[role=row]").all()]
    cells = [row[greedy] for row in rows if row]
    assert [float(c) for c in cells] == pytest.approx([row["eval.greedy_acc"] for row in store["history"]])
