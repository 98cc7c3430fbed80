"""`searchlearn` command line: run experiments, evaluate policies, read past runs,
inspect configs and variants."""

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
    ev = sub.add_parser("eval", help="evaluate a policy: a checkpoint or policy directory, an MLflow run id, "
                                     "or a model URI such as models:/searchlearn-policy@champion")
    ev.add_argument("model")
    ev.add_argument("overrides", nargs="*", help="config overrides, e.g. eval.k=8 eval.num_problems=50")
    ev.add_argument("--jsonl", help="a GSM8K-format JSONL file to evaluate on instead of --split")
    ev.add_argument("--split", choices=["test", "train"], default="test",
                    help="the experiment's held-out split (test) or search pool (train)")
    _store_args(ev)
    runs = sub.add_parser("runs", help="past runs in an experiment's MLflow store, newest first")
    _store_args(runs)
    runs.add_argument("--limit", type=int, default=20, help="how many runs to list")
    show = sub.add_parser("show", help="one run's per-round summary table")
    show.add_argument("run", help="run name (e.g. tiny-gray-pronghorn), run id, or a unique id prefix")
    _store_args(show)
    cfg = sub.add_parser("config", help="print the resolved, validated config")
    cfg.add_argument("experiment")
    cfg.add_argument("overrides", nargs="*")
    sub.add_parser("list", help="list experiment variants and pluggable components")
    sub.add_parser("ui", help="how to open the Prefect and MLflow UIs on local results")
    return p


def _parse(argv: list[str] | None):
    """Overrides may also follow options (`eval M --split train eval.k=8`), which argparse
    alone leaves unparsed once the positional list has been filled."""
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra and hasattr(args, "overrides") and not [e for e in extra if e.startswith("-") or "=" not in e]:
        args.overrides = [*args.overrides, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def _store_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--experiment", default="quickstart",
                   help="variant or YAML whose run_dir and MLflow store to use (default: quickstart)")
    p.add_argument("--run-dir", help="the run directory (its mlflow.db), instead of the experiment's")


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    try:
        return _dispatch(args)
    except (ConfigError, UsageError) as e:
        print(f"{'config ' if isinstance(e, ConfigError) else ''}error: {e}", file=sys.stderr)
        return 2
    except RunDirBusy as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BUSY


EXIT_BUSY = 3  # another run holds the run_dir


class UsageError(Exception):
    """A bad argument found after parsing (an unknown run or model, no store): one line, exit 2."""


def _dispatch(args) -> int:
    if args.command == "run":
        return _run(args.experiment, args.overrides, args.refresh_cache)
    if args.command == "eval":
        return _eval(args)
    if args.command == "runs":
        _runs(args)
    elif args.command == "show":
        _show(args)
    elif args.command == "config":
        print(to_yaml(load_config(args.experiment, args.overrides)), end="")
    elif args.command == "list":
        _list()
    elif args.command == "ui":
        print(ui_hint("runs"))
    return 0


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
        search_and_learn.with_options(result_storage=store)(**_experiment_params(experiment),
                                                            overrides=list(overrides))
    print(ui_hint(cfg.run_dir))
    return 0


def _experiment_params(experiment: str) -> dict:
    """A flow's `experiment` is a choice of shipped variants; a YAML path goes to `experiment_file`."""
    return {"experiment_file": experiment} if experiment.endswith((".yaml", ".yml")) else {"experiment": experiment}


def _eval(args) -> int:
    cfg = _store_config(args, args.overrides)
    preflight(cfg)
    _check_model(cfg, args.model)
    if args.jsonl and not Path(args.jsonl).is_file():
        raise UsageError(f"--jsonl: file not found: {args.jsonl}")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    with locked(cfg.run_dir):
        prefect_api()
        from flows.evaluate_model import evaluate_model

        overrides = [*args.overrides, *([f"run_dir={args.run_dir}"] if args.run_dir else [])]
        flow = evaluate_model.with_options(result_storage=Path(cfg.run_dir).resolve() / "prefect-results")
        scores = flow(model=args.model, split=args.split, jsonl=args.jsonl, overrides=overrides,
                      **_experiment_params(args.experiment))
    print(_scores_text(args.model, args.jsonl or f"{cfg.name} {args.split} split", scores))
    print(ui_hint(cfg.run_dir))
    return 0


def _check_model(cfg, model: str) -> None:
    """Find the policy before any server starts: a typo'd run id or alias fails in a second."""
    if Path(model).is_dir():
        return
    if not model.startswith(("models:/", "runs:/")) and ("/" in model or Path(model).exists()):
        raise UsageError(f"model {model!r}: no such checkpoint or policy directory")
    from searchlearn import registry, tracking
    from searchlearn.past_runs import store_missing

    uri = tracking.tracking_uri(cfg)
    missing = store_missing(uri)
    if missing:
        raise UsageError(f"model {model!r} is not a directory, and there is {missing}")
    try:
        registry.resolve_policy(uri, model)
    except Exception as e:  # MlflowException, LookupError: the message names what is missing
        raise UsageError(f"model {model!r}: {str(e).splitlines()[0]}") from None


def _scores_text(model: str, on: str, scores: dict) -> str:
    from searchlearn.champion import accuracies

    lines = [f"{model} on {on} ({scores.get('eval.problems', '?')} problems):"]
    lines += [f"  {name:<22} {text}  (95 % interval)" for name, text in accuracies([scores], scores).items()]
    return "\n".join(lines)


def _store_config(args, overrides: list[str] = ()):
    return load_config(args.experiment, [*overrides, *([f"run_dir={args.run_dir}"] if args.run_dir else [])])


def _store(args) -> tuple[str, str]:
    """(tracking URI, MLflow experiment name) of the store that --experiment / --run-dir name."""
    from searchlearn import tracking
    from searchlearn.past_runs import store_missing

    cfg = _store_config(args)
    uri = tracking.tracking_uri(cfg)
    missing = store_missing(uri)
    if missing:
        raise UsageError(missing)
    return uri, cfg.tracking.experiment_name


def _runs(args) -> None:
    from rich.console import Console
    from rich.table import Table

    from searchlearn.past_runs import NoSuchRun, list_runs

    uri, experiment = _store(args)
    try:
        rows = list_runs(uri, experiment, args.limit)
    except NoSuchRun as e:
        raise UsageError(str(e)) from None
    table = Table(title=f"runs in {uri} (experiment {experiment!r}), newest first")
    for col in ("started", "run", "id", "flow", "variant", "status", "rounds", "best greedy (round)", "minutes"):
        table.add_column(col)
    for r in rows:
        best = "-" if r["best_greedy"] is None else f"{r['best_greedy']:.3f} (r{r['best_round']})"
        table.add_row(r["started"], r["name"], r["run_id"][:8], r["flow"], r["experiment"], r["status"],
                      str(r["rounds"]), best, "-" if r["minutes"] is None else str(r["minutes"]))
    Console(width=200).print(table)
    print(f"details: searchlearn show <run> --experiment {args.experiment}"
          + (f" --run-dir {args.run_dir}" if args.run_dir else ""))


def _show(args) -> None:
    from searchlearn import tracking
    from searchlearn.past_runs import NoSuchRun, find_run, run_history
    from searchlearn.reporting import render_summary

    uri, experiment = _store(args)
    try:
        run = find_run(uri, experiment, args.run)
    except NoSuchRun as e:
        raise UsageError(str(e)) from None
    tags = run.data.tags
    print(f"{run.info.run_name}  ({run.info.run_id}, {run.info.status})")
    for label, key in (("command", "searchlearn.command"), ("champion", "searchlearn.final_model"),
                       ("Prefect flow run", "prefect.flow_run_url")):
        if key in tags:
            print(f"  {label}: {tags[key]}")
    print(render_summary(run_history(uri, run), f"{tags.get('searchlearn.experiment', '')} per round"), end="")
    handle = {"uri": uri, "experiment_id": run.info.experiment_id, "run_id": run.info.run_id}
    print(f"MLflow UI: {tracking.ui_command(handle)}, then\n  {tracking.run_url(handle)}")


def ui_hint(run_dir: str) -> str:
    from searchlearn.tracking import ML_VIEW

    db = Path(run_dir).resolve() / "mlflow.db"
    return (
        "\nResults:\n"
        f"  MLflow UI:  mlflow ui --backend-store-uri sqlite:///{db} --port 5000\n"
        f"              then open http://127.0.0.1:5000/#/experiments?{ML_VIEW}\n"
        "              (the machine-learning view; MLflow 3 opens its GenAI view otherwise)\n"
        "  Prefect UI: prefect server start   (http://127.0.0.1:4200; runs made while a server is up,\n"
        "              with PREFECT_API_URL=http://127.0.0.1:4200/api, show there)  or: make ui\n"
        "  Past runs:  searchlearn runs --experiment <variant>;  searchlearn show <run>\n"
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
