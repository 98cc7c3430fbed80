"""Benchmark: does search + learning earn its place? Three arms, one run.

- init (a):      SFT on the experiment's demonstrations only (the loop's round 0);
- reference (b): SFT on --reference-demos gold demonstrations (8x the init's by
                 default), no search: what more demonstrations would buy;
- loop (c):      the experiment itself: (a), then its search + learning rounds.

Each arm is the real flow (Prefect + MLflow, `searchlearn run` with overrides), in
its own run directory under --run-dir, so the loop's numbers are exactly what
`make run` produces. Per round and arm: greedy, maj@k and pass@k with 95 %
intervals (±1.96 standard errors over problems) on the held-out split and on the
hand-written set, tokens generated, and wall time per stage (from Prefect's task
runs). Written to bench/results/quickstart.json as
{"loop": [rows], "init": row, "reference": row, ...}.

    .venv/bin/python bench/arms.py                                   # quickstart
    .venv/bin/python bench/arms.py --experiment tiny --reference-demos 200   # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

Z95 = 1.96


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--experiment", default="quickstart")
    p.add_argument("--reference-demos", type=int, default=1024)
    p.add_argument("--reference-epochs", type=float, default=1.0)
    p.add_argument("--run-dir", default=str(ROOT / "runs" / "bench-arms"))
    p.add_argument("--override", nargs="*", default=[], help="overrides for every arm (key=value)")
    p.add_argument("--arms", nargs="+", default=["loop", "reference"], choices=["loop", "reference"])
    p.add_argument("--k", type=int, default=4, help="maj@k / pass@k of every arm's policies, sampled after the "
                   "runs (the loop itself evaluates greedy only, to stay in its time budget); 0 skips")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "quickstart.json"))
    p.add_argument("--merge", action="store_true", help=argparse.SUPPRESS)  # internal: add to --out's arms
    return p.parse_args(argv)


def run_arm(experiment: str, run_dir: Path, overrides: list[str]) -> tuple[list[dict], dict, float]:
    """The flow's history, per-task wall seconds and the arm's wall time."""
    from flows.search_and_learn import search_and_learn

    flow = search_and_learn.with_options(result_storage=run_dir / "prefect-results")
    start = time.perf_counter()
    state = flow(experiment=experiment, overrides=[f"run_dir={run_dir}", *overrides], return_state=True)
    wall = time.perf_counter() - start
    if not state.is_completed():
        raise SystemExit(f"{experiment} {overrides} failed: {state.message}")
    return state.result(), task_seconds(state.state_details.flow_run_id), wall


def peak_rss_gib() -> float:
    """This process's peak RSS so far (the arm, its post-hoc sampling included)."""
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)


def task_seconds(flow_run_id) -> dict[str, list[float]]:
    """Task name (per round where named so) -> wall seconds of each run of it."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    out: dict[str, list[float]] = {}
    for run in sorted(runs, key=lambda r: r.start_time or r.expected_start_time):
        if run.start_time and run.end_time:
            out.setdefault(run.name.rsplit("-", 1)[0], []).append(
                round((run.end_time - run.start_time).total_seconds(), 1))
    return out


def sampled_scores(experiment: str, run_dir: Path, overrides: list[str], k: int) -> list[dict]:
    """maj@k and pass@k (held out and each extra eval set) of every policy the arm
    wrote, round by round, through the same evaluate stages with eval.k=k."""
    from searchlearn.artifacts import artifact_ref
    from searchlearn.config import load_config
    from searchlearn.problems.sources import eval_set
    from searchlearn.stages.data import eval_file_stage, problems_stage
    from searchlearn.stages.evaluate import eval_stage

    cfg = load_config(experiment, [*overrides, f"run_dir={run_dir}", f"eval.k={k}"])
    problems = problems_stage(cfg).run(run_dir)
    extra = {name: eval_file_stage(path).run(run_dir) for name, path in map(eval_set, cfg.eval.extra_sets)}
    out = []
    for r, name in enumerate(["policy-init"] + [f"policy-r{i}" for i in range(1, cfg.rounds + 1)]):
        [path] = (run_dir / "artifacts" / name).iterdir()
        policy = artifact_ref(path)
        row = dict(eval_stage(cfg, policy, problems, r).run(run_dir))
        for set_name, data in extra.items():
            row.update(eval_stage(cfg, policy, data, r, set_name).run(run_dir))
        out.append({key: v for key, v in row.items() if "_at_" in key})
    return out


def interval(row: dict, key: str) -> list[float] | None:
    if key not in row or f"{key}_se" not in row:
        return None
    v, se = row[key], row[f"{key}_se"]
    return [round(max(0.0, v - Z95 * se), 4), round(min(1.0, v + Z95 * se), 4)]


def summarize(row: dict) -> dict:
    """One round of one arm, as the results file keeps it."""
    k = max((int(key.rsplit("_", 1)[1]) for key in row if key.startswith("eval.maj_at_") and
             not key.endswith("_se")), default=None)  # the post-hoc sampled k when both exist
    out = {"round": row["round"], "problems": row.get("eval.problems"),
           "greedy": row["eval.greedy_acc"], "greedy_ci": interval(row, "eval.greedy_acc"),
           "greedy_handwritten": row.get("eval.handwritten.greedy_acc"),
           "greedy_handwritten_ci": interval(row, "eval.handwritten.greedy_acc"),
           "handwritten_problems": row.get("eval.handwritten.problems")}
    if k:
        for name in (f"maj_at_{k}", f"pass_at_{k}"):
            out[name], out[f"{name}_ci"] = row.get(f"eval.{name}"), interval(row, f"eval.{name}")
            hw = f"eval.handwritten.{name}"
            out[f"{name}_handwritten"], out[f"{name}_handwritten_ci"] = row.get(hw), interval(row, hw)
    for key in ("search.tokens", "search.solved", "search.any_correct", "learn.rft.examples",
                "learn.train.steps", "learn.train.tokens", "learn.train.tokens_per_s", "learn.train.first_loss",
                "learn.train.last_loss", "tokens.cumulative", "seconds"):
        if key in row:
            out[key] = row[key]
    return out


def per_round_seconds(seconds: dict[str, list[float]], rounds: int) -> list[dict]:
    """Stage wall seconds by round: tasks that run once per round are split by order;
    the rest (prepare, init, SFT) belong to round 0."""
    rows = [{} for _ in range(rounds + 1)]
    for name, values in seconds.items():
        if len(values) == rounds + 1:  # evaluations: rounds 0..R
            for r, v in enumerate(values):
                rows[r][name] = v
        elif len(values) % rounds == 0 and rounds:  # per-round tasks (shards: several per round)
            per = len(values) // rounds
            for r in range(rounds):
                rows[r + 1][name] = round(sum(values[r * per:(r + 1) * per]), 1)
        else:
            rows[0][name] = round(sum(values), 1)
    return rows


def main(argv=None) -> int:
    args = parse_args(argv)
    if len(args.arms) > 1:
        return run_arms_apart(sys.argv[1:] if argv is None else list(argv), args)
    from flows.server import prefect_api

    prefect_api()  # a Prefect server tied to this process (as `searchlearn run` starts one), unless one is set
    root = Path(args.run_dir).resolve()
    result: dict = {"experiment": args.experiment, "overrides": args.override,
                    "when": time.strftime("%Y-%m-%d %H:%M"), "cpus": len(os.sched_getaffinity(0))}
    if "loop" in args.arms:
        history, seconds, wall = run_arm(args.experiment, root / "loop", args.override)
        if args.k:
            for row, extra in zip(history, sampled_scores(args.experiment, root / "loop", args.override, args.k)):
                row.update(extra)
        stages = per_round_seconds(seconds, len(history) - 1)
        rows = [{**summarize(h), "stage_seconds": s} for h, s in zip(history, stages)]
        result.update(loop=rows, init=rows[0], loop_wall_s=round(wall, 1), loop_peak_rss_gib=peak_rss_gib())
        print(json.dumps({"arm": "loop", "wall_s": round(wall, 1),
                          "greedy": [r["greedy"] for r in rows],
                          "handwritten": [r["greedy_handwritten"] for r in rows]}), flush=True)
    if "reference" in args.arms:
        overrides = [*args.override, "rounds=0", f"init.num_demos={args.reference_demos}",
                     f"init.train.epochs={args.reference_epochs}"]
        history, seconds, wall = run_arm(args.experiment, root / "reference", overrides)
        if args.k:
            history[0].update(sampled_scores(args.experiment, root / "reference", overrides, args.k)[0])
        result.update(reference={**summarize(history[0]), "stage_seconds": per_round_seconds(seconds, 0)[0],
                                 "demos": args.reference_demos, "epochs": args.reference_epochs},
                      reference_wall_s=round(wall, 1), reference_peak_rss_gib=peak_rss_gib())
        print(json.dumps({"arm": "reference", "wall_s": round(wall, 1), "greedy": history[0]["eval.greedy_acc"],
                          "handwritten": history[0].get("eval.handwritten.greedy_acc")}), flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.merge and out.is_file():  # the other arms' results, from this same benchmark run
        result = {**json.loads(out.read_text()), **result}
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(out)
    print(f"wrote {args.out}")
    return 0


def run_arms_apart(argv: list[str], args) -> int:
    """Each arm in a child process of its own: one process that ran the loop, sampled
    its policies and then trained the reference grew past 24 GiB here and thrashed
    (cause not diagnosed), and a clean process measures each arm's peak memory on its own."""
    import subprocess

    Path(args.out).unlink(missing_ok=True)
    for arm in args.arms:
        # argparse keeps the last --arms given, so the child's overrides the caller's.
        child = subprocess.run([sys.executable, str(Path(__file__).resolve()), *argv, "--arms", arm, "--merge"])
        if child.returncode:
            return child.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
