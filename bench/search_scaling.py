"""Test-time compute scaling: every search method on held-out problems at budgets
of 2^1..2^5 samples' worth, recording accuracy against generated tokens, and each
method's tokens/s relative to best-of-N on the same generator.

    .venv/bin/python bench/search_scaling.py --run-dir runs/tiny_prm --round 2 --budgets 2 4 8
    .venv/bin/python bench/search_scaling.py --run-dir runs --round 2 --experiment quickstart --problems 40
    .venv/bin/python bench/search_scaling.py --run-dir runs/bench-arms/loop --round 3 --experiment quickstart \
        --problems 200 --methods beam_search dvts mcts --budgets 4 8 16 --out bench/results/search_scaling.json

Reads the policy and PRM of a finished run's round (the flow's stage outputs, as its
round run recorded them: prm_quickstart.latest), and runs the same comparison as the flow's `eval.scaling` stage
(searchlearn.search.scaling) with the experiment's search settings.

Every row keeps its per-problem outcomes (`solved`), so a cell compares paired, over the
same problems, with best-of-N selectors of an `evaluate-reranking` output (its
records.jsonl, at the same N): `--against majority@<rerank dir>` adds
`paired[<selector>@<dir>]`, the mean per-problem difference (this cell minus that
selector) with its 95 % bootstrap interval. `--merge` adds this run's rows to an existing
`--out` file (a row of the same method and N is replaced), so cells run one by one:

    .venv/bin/python bench/search_scaling.py --run-dir runs/bench-arms/loop --round 3 --experiment quickstart \
        --problems 200 --kind implicit_step --scorer-dir <implicit_step stage dir> --methods beam_search \
        --budgets 4 8 --against majority@<rerank dir> --out <file> --merge
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def rerank_records(spec: str) -> tuple[str, dict]:
    """`selector@rerank_dir` -> (spec, {N: {problem_id: 0/1}}) from its records.jsonl."""
    selector, _, rerank_dir = spec.partition("@")
    path = Path(rerank_dir) / "records.jsonl"
    if not selector or not path.exists():
        raise SystemExit(f"--against {spec!r}: expected SELECTOR@RERANK_DIR with {path} present")
    by_n: dict = {}
    for line in path.read_text().splitlines():
        record = json.loads(line)
        for key, selectors in record.items():
            if key.startswith("n") and key[1:].isdigit():
                if selector not in selectors:
                    raise SystemExit(f"--against {spec!r}: no selector {selector!r} in {path} "
                                     f"(it has {sorted(selectors)})")
                by_n.setdefault(int(key[1:]), {})[record["id"]] = int(selectors[selector])
    return spec, by_n


def paired_rows(rows: list[dict], against: list[tuple[str, dict]]) -> None:
    """Each row's difference from each reference at its N, problem by problem."""
    from prm_quickstart import bootstrap_diff

    for row in rows:
        for spec, by_n in against:
            other = by_n.get(row["n"])
            if other is None:
                continue
            missing = set(row["solved"]) - set(other)
            if missing:
                raise SystemExit(f"--against {spec}: {len(missing)} problem(s) of this run are not in its records")
            diff = bootstrap_diff([row["solved"][k] - other[k] for k in sorted(row["solved"])])
            row.setdefault("paired", {})[spec] = {**diff, "other": round(sum(other[k] for k in row["solved"])
                                                                     / len(row["solved"]), 4)}


def merged(out: Path, report: dict) -> dict:
    """This run's report with the earlier rows of `out` whose (method, N) it did not run."""
    if not out.exists():
        return report
    old = json.loads(out.read_text())
    # Rows of another policy, backend or search setting would not be one curve.
    for key in ("experiment", "policy", "scorer", "kind", "step_check", "problems", "backend", "search"):
        earlier = old.get(key, "none" if key == "step_check" else None)  # files from before the option
        if json.dumps(earlier, sort_keys=True) != json.dumps(report[key], sort_keys=True):
            raise SystemExit(f"--merge: {out} has {key}={earlier!r}, this run {report[key]!r}")
    ran = {(r["method"], r["n"]) for r in report["rows"]}
    kept = [r for r in old["rows"] if (r["method"], r["n"]) not in ran]
    wall = old.get("wall_s") if isinstance(old.get("wall_s"), dict) else {}
    wall.update({f"{r['method']} n{r['n']}": r["seconds"] for r in report["rows"]})
    return {**old, **report, "rows": kept + report["rows"], "wall_s": wall,
            "commands": [*old.get("commands", []), *report["commands"]]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run-dir", required=True)
    ap.add_argument("--round", type=int, required=True)
    ap.add_argument("--experiment", default="tiny_prm", help="whose search settings to use")
    ap.add_argument("--budgets", type=int, nargs="+", default=[2, 4, 8, 16, 32])
    ap.add_argument("--methods", nargs="+", default=["bon_majority", "bon_weighted", "beam_search", "dvts", "mcts"])
    ap.add_argument("--problems", type=int, default=50)
    ap.add_argument("--kind", default="prm", help="the reward model that guides search: prm | orm | verifier | implicit "
                                                  "(its stage output <kind>-r<round>)")
    ap.add_argument("--scorer-dir", help="a reward-model stage directory (holding model/); default: the run's "
                                         "<kind>-r<round>, the flow's")
    ap.add_argument("--out", help="write the rows (with 95 %% intervals) and the settings here as JSON")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--override", nargs="*", default=[], help="config overrides, e.g. search.mcts.expansions=2")
    ap.add_argument("--against", nargs="+", default=[], metavar="SELECTOR@RERANK_DIR",
                    help="paired differences against these best-of-N selectors at the same N (e.g. majority@<dir>)")
    ap.add_argument("--merge", action="store_true", help="add the rows to --out's existing rows")
    args = ap.parse_args()
    against = [rerank_records(spec) for spec in args.against]  # a bad spec fails before any model loads

    from omegaconf import OmegaConf
    from prm_quickstart import interval, latest  # bench/ is this script's directory

    from searchlearn.config import load_config
    from searchlearn.generation import make_generator
    from searchlearn.reward import load_scorer
    from searchlearn.reward.checks import with_step_check
    from searchlearn.search.scaling import scaling_curve
    from searchlearn.stages.data import test_problems

    cfg = load_config(args.experiment, args.override)
    search_cfg = OmegaConf.to_container(cfg.search, resolve=True)
    run_dir = Path(args.run_dir).resolve()
    policy = Path(latest(run_dir, f"policy-r{args.round}")["path"]) / "model"
    scorer_dir = Path(args.scorer_dir) if args.scorer_dir else Path(latest(run_dir, f"{args.kind}-r{args.round}")["path"])
    # prm.step_check (e.g. --override prm.step_check=calculator), as the stages apply it
    scorer = with_step_check(load_scorer(args.kind, str(scorer_dir / "model")), cfg.prm.step_check)
    problems = test_problems(latest(run_dir, "problems")["path"], args.problems)
    gen_cfg = {**OmegaConf.to_container(cfg.generation, resolve=True), "backend": args.backend}
    gen = make_generator(str(policy), gen_cfg, seed=0)
    start = time.perf_counter()
    rows = scaling_curve(problems, gen, scorer, args.methods, args.budgets, search_cfg,
                         reseed=lambda cell: gen.reseed(cell), progress=lambda m: print(m, flush=True))
    wall = time.perf_counter() - start
    for r in rows:  # normal 95 % interval over problems (they are independent)
        r.update(problems=len(problems), ci95=interval(r["accuracy"], len(problems)))
    paired_rows(rows, against)
    bon = {r["n"]: r["tokens_per_s"] for r in rows if r["method"] == "bon_majority"}
    print(json.dumps([{k: v for k, v in r.items() if k != "solved"} for r in rows]))
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        report = {"experiment": args.experiment, "policy": str(policy), "scorer": str(scorer_dir),
                  "kind": args.kind, "step_check": cfg.prm.step_check, "problems": len(problems), "backend": args.backend, "wall_s": round(wall, 1),
                  "search": search_cfg, "rows": rows, "commands": [" ".join([".venv/bin/python", *sys.argv])]}
        out.write_text(json.dumps(merged(out, report) if args.merge else report, indent=2) + "\n")
    print(f"\npolicy {policy}\n{args.kind} {scorer_dir} (step check: {cfg.prm.step_check})\n{len(problems)} held-out problems, backend {args.backend}, "
          f"wall {wall:.0f} s, peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.1f} GB")
    gen_bon = {r["n"]: r["gen_tokens_per_s"] for r in rows if r["method"] == "bon_majority"}
    print(f"\n{'method':14s} {'N':>3s} {'acc':>6s} {'tok/problem':>12s} {'tok/s':>7s} {'vs BoN':>7s} "
          f"{'gen tok/s':>10s} {'vs BoN':>7s}")
    for r in rows:
        ratio = f"{r['tokens_per_s'] / bon[r['n']]:.2f}" if bon.get(r["n"]) else "-"
        gen_ratio = f"{r['gen_tokens_per_s'] / gen_bon[r['n']]:.2f}" if gen_bon.get(r["n"]) else "-"
        print(f"{r['method']:14s} {r['n']:3d} {r['accuracy']:6.3f} {r['tokens_per_problem']:12.0f} "
              f"{r['tokens_per_s']:7.0f} {ratio:>7s} {r['gen_tokens_per_s']:10.0f} {gen_ratio:>7s}")
        for spec, d in r.get("paired", {}).items():
            print(f"{'':18s} minus {spec}: {d['diff']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}] "
                  f"(that selector {d['other']:.3f})")


if __name__ == "__main__":
    main()
