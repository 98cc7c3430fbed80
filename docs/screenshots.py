"""Take the README's screenshots (docs/img/) of a finished run, in headless Chromium.

    prefect server start --host 127.0.0.1 --port 4242          # with PREFECT_UI_API_URL=http://127.0.0.1:4242/api
    PREFECT_API_URL=http://127.0.0.1:4242/api searchlearn run tiny rounds=3 seed=1 run_dir=/tmp/shot
    MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false mlflow ui --backend-store-uri sqlite:////tmp/shot/mlflow.db --port 5066
    python docs/screenshots.py --run-dir /tmp/shot --mlflow http://127.0.0.1:5066 --prefect http://127.0.0.1:4242

Uses Debian's chromium (`--chromium`); images are palette PNGs, a few hundred KB at most.
"""

from __future__ import annotations

import argparse
import json
import urllib.request
from pathlib import Path

OUT = Path(__file__).resolve().parent / "img"
ML_VIEW = "?workflowType=machine_learning"


def _ids(run_dir: Path, prefect: str) -> dict:
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{run_dir.resolve() / 'mlflow.db'}")
    exp = client.get_experiment_by_name("searchlearn")
    [parent] = client.search_runs([exp.experiment_id], "tags.`mlflow.parentRunId` IS NULL",
                                  order_by=["attributes.start_time DESC"], max_results=1)
    model = parent.data.tags["searchlearn.final_model"].removeprefix("models:/")
    flow_run = parent.data.tags["prefect.flow_run_id"]
    with urllib.request.urlopen(f"{prefect}/api/flow_runs/{flow_run}") as r:
        assert json.load(r)["id"] == flow_run, "the run's Prefect server is not at --prefect"
    return {"exp": exp.experiment_id, "run": parent.info.run_id, "model": model, "flow_run": flow_run,
            "experiment": parent.data.tags["searchlearn.experiment"]}


def _shoot(page, url: str, out: Path, clicks=(), clip=None, wait: str | None = None) -> None:
    page.goto(url)
    if wait:
        page.get_by_text(wait, exact=True).first.wait_for(timeout=60_000)
    page.wait_for_timeout(4000)
    for click in clicks:
        target = page.locator(click[4:]) if click.startswith("css=") else page.get_by_text(click, exact=True)
        if target.count():
            target.first.click()
            page.wait_for_timeout(2000)
    page.screenshot(path=str(out), clip=clip)
    _shrink(out)


def _shrink(path: Path) -> None:
    """A 256-colour palette: UI screenshots lose nothing visible and a lot of bytes."""
    from PIL import Image

    Image.open(path).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run-dir", type=Path, required=True)
    p.add_argument("--mlflow", default="http://127.0.0.1:5066")
    p.add_argument("--prefect", default="http://127.0.0.1:4242")
    p.add_argument("--chromium", default="/usr/bin/chromium")
    args = p.parse_args()
    ids = _ids(args.run_dir, args.prefect)
    OUT.mkdir(exist_ok=True)
    from playwright.sync_api import sync_playwright

    close_assistant = 'css=button[aria-label="Close"]'  # MLflow's assistant panel hides half the page
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=args.chromium, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1500})
        _shoot(page, f"{args.mlflow}/#/experiments/{ids['exp']}/runs/{ids['run']}{ML_VIEW}",
               OUT / "mlflow-run-report.png", clicks=[close_assistant, "Show more"], wait="Description",
               clip={"x": 200, "y": 0, "width": 1200, "height": 1100})
        page.set_viewport_size({"width": 1400, "height": 1000})
        _shoot(page, f"{args.mlflow}/#/experiments/{ids['exp']}/models/{ids['model']}{ML_VIEW}",
               OUT / "mlflow-champion.png", clicks=[close_assistant], wait="eval.greedy_acc",
               clip={"x": 200, "y": 0, "width": 1200, "height": 1000})
        flow_run = f"{args.prefect}/runs/flow-run/{ids['flow_run']}"
        _shoot(page, flow_run, OUT / "prefect-flow-run.png", clicks=["Task Runs"],
               clip={"x": 260, "y": 0, "width": 1140, "height": 1000})
        _shoot(page, flow_run, OUT / "prefect-summary.png", clicks=["Artifacts", f"{ids['experiment']}-summary"],
               clip={"x": 240, "y": 0, "width": 1160, "height": 1000})
        browser.close()
    for png in sorted(OUT.glob("*.png")):
        print(f"{png.relative_to(OUT.parent.parent)}: {png.stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
