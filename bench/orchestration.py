"""Orchestration cost: a fully cached re-run vs the first run, and the overhead of
Prefect + MLflow over calling the same stages directly.

    .venv/bin/python bench/orchestration.py --experiment tiny
    .venv/bin/python bench/orchestration.py --experiment quickstart --run-dir runs --cached-only

Prints wall times and ratios. The plain baseline runs the identical stage
functions (searchlearn.stages) in a Python loop with no Prefect and no MLflow.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def plain_loop(experiment: str, run_dir: Path) -> float:
    """The recipe through the core stages only (same order and inputs as the flow)."""
    from omegaconf import OmegaConf

    from flows.search_and_learn import LEARN_FAMILIES, SEARCH_FAMILIES, active
    from searchlearn.config import load_config
    from searchlearn.sharding import num_blocks
    from searchlearn.stages import data, evaluate, learn, policy, search

    start = time.perf_counter()
    cfg = load_config(experiment, [f"run_dir={run_dir}"])
    c = lambda node: OmegaConf.to_container(node, resolve=True)  # noqa: E731
    gen, seed, out = c(cfg.generation), cfg.seed, run_dir / "artifacts"
    probs = data.prepare_problems(c(cfg.problems), cfg.init.num_demos, out / "problems")
    base = policy.materialize_policy(c(cfg.policy), probs["path"], seed, out / "base")
    pol = init = policy.sft_policy(base["path"], probs["path"], c(cfg.init), seed, out / "init")
    evaluate.evaluate_policy(policy.model_path(pol), probs["path"], c(cfg.eval), gen, seed, out / "eval0")
    for r in range(1, cfg.rounds + 1):
        search_cfg, block_size = active(cfg.search, "algorithm", SEARCH_FAMILIES), cfg.execution.block_size
        blocks = list(range(num_blocks(search_cfg["problems_per_round"], block_size)))
        shard = search.search_shard(policy.model_path(pol), probs["path"], search_cfg, gen, None, seed, r,
                                    block_size, blocks, out / f"search{r}-shard")
        s = search.merge_search([shard["path"]], probs["path"], search_cfg, seed, r, out / f"search{r}")
        start_from = init if cfg.learn.init_from == "init" else pol
        pol = learn.learn_round(policy.model_path(start_from), policy.model_path(pol), s["path"],
                                active(cfg.learn, "algorithm", LEARN_FAMILIES), seed, out / f"policy{r}")
        evaluate.evaluate_policy(policy.model_path(pol), probs["path"], c(cfg.eval), gen, seed, out / f"eval{r}")
    return time.perf_counter() - start


def flow_run(experiment: str, run_dir: Path) -> float:
    from flows.search_and_learn import search_and_learn

    start = time.perf_counter()
    search_and_learn.with_options(result_storage=run_dir / "prefect-results")(
        experiment=experiment, overrides=[f"run_dir={run_dir}"])
    return time.perf_counter() - start


def server_start() -> float:
    """Time to the first API answer (a temporary server starts unless PREFECT_API_URL is set)."""
    from prefect import flow

    @flow
    def noop() -> None:
        return None

    start = time.perf_counter()
    noop()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--experiment", default="tiny")
    ap.add_argument("--run-dir", default=None, help="an existing run dir (with --cached-only)")
    ap.add_argument("--cached-only", action="store_true", help="only time a re-run of an existing run dir")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-orch-"))
    rows = [("prefect API first answer (temp server start)", server_start())]
    if args.cached_only:
        rows.append(("cached re-run", flow_run(args.experiment, Path(args.run_dir).resolve())))
    else:
        rows.append(("plain stages, no Prefect/MLflow", plain_loop(args.experiment, work / "plain")))
        rows.append(("flow, first run", flow_run(args.experiment, work / "flow")))
        rows.append(("flow, fully cached re-run", flow_run(args.experiment, work / "flow")))
    print(f"\nexperiment: {args.experiment}")
    for name, secs in rows:
        print(f"  {name:48s} {secs:8.1f} s")
    if not args.cached_only:
        plain, first, cached = rows[1][1], rows[2][1], rows[3][1]
        print(f"  Prefect+MLflow overhead: {(first - plain):.1f} s = {100 * (first - plain) / first:.1f} % of the run")
        print(f"  cached re-run / first run: {100 * cached / first:.1f} %")


if __name__ == "__main__":
    main()
