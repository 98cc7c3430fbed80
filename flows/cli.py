"""`searchlearn` command line: run experiments, inspect configs and variants."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from flows.server import prefect_api
from searchlearn.config import ConfigError, available_experiments, load_config, to_yaml
from searchlearn.preflight import preflight
from searchlearn.rundir import RunDirBusy, locked


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="searchlearn", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run an experiment variant (conf/experiment/<name>.yaml or a YAML path)")
    run.add_argument("experiment")
    run.add_argument("overrides", nargs="*", help="OmegaConf dotlist overrides, e.g. rounds=2 search.n=16")
    run.add_argument("--refresh-cache", action="store_true",
                     help="recompute every stage; each new output replaces the old one atomically")
    show = sub.add_parser("config", help="print the resolved, validated config")
    show.add_argument("experiment")
    show.add_argument("overrides", nargs="*")
    sub.add_parser("list", help="list experiment variants and pluggable components")
    sub.add_parser("ui", help="how to open the Prefect and MLflow UIs on local results")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args.experiment, args.overrides, args.refresh_cache)
        if args.command == "config":
            print(to_yaml(load_config(args.experiment, args.overrides)), end="")
        elif args.command == "list":
            _list()
        elif args.command == "ui":
            print(ui_hint("runs"))
    except ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return 2
    except RunDirBusy as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BUSY
    return 0


EXIT_BUSY = 3  # another run holds the run_dir


def _run(experiment: str, overrides: list[str], refresh: bool) -> int:
    # Everything that needs no model is checked, and the run_dir locked, before a
    # Prefect server or any model starts: a bad input fails in about a second.
    cfg = load_config(experiment, overrides)
    preflight(cfg)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    with locked(cfg.run_dir):
        prefect_api()
        if refresh:  # every task runs, and each stage rebuilds its output in place (see tasks/stage.py)
            os.environ["PREFECT_TASKS_REFRESH_CACHE"] = "true"
        from flows.search_and_learn import search_and_learn

        store = Path(cfg.run_dir).resolve() / "prefect-results"
        search_and_learn.with_options(result_storage=store)(experiment=experiment, overrides=list(overrides))
    print(ui_hint(cfg.run_dir))
    return 0


def ui_hint(run_dir: str) -> str:
    db = Path(run_dir).resolve() / "mlflow.db"
    return (
        "\nResults:\n"
        f"  MLflow UI:  mlflow ui --backend-store-uri sqlite:///{db} --port 5000   (http://127.0.0.1:5000)\n"
        "  Prefect UI: prefect server start   (http://127.0.0.1:4200; runs made while a server is up,\n"
        "              with PREFECT_API_URL=http://127.0.0.1:4200/api, show there)  or: make ui\n"
    )


def _list() -> None:
    from searchlearn.learn import LEARNERS
    from searchlearn.models import SOURCES
    from searchlearn.problems.sources import SOURCES as PROBLEMS
    from searchlearn.search import ALGORITHMS, SELECTIONS

    print("experiments:", ", ".join(available_experiments()))
    print("policy.source:", ", ".join(SOURCES))
    print("problems.source:", ", ".join(PROBLEMS))
    print("search.algorithm:", ", ".join(ALGORITHMS))
    print("search.selection:", ", ".join(SELECTIONS))
    print("learn.algorithm:", ", ".join(LEARNERS))


if __name__ == "__main__":
    sys.exit(main())
