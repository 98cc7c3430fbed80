"""Benchmark: how noisy Monte-Carlo step labels are, measured against the exact step
oracle, as the number of rollouts and the problems' solve rate change.

Runs the recipe's own stages (no Prefect, no MLflow; cached in --run-dir, so a rerun
with other settings reuses everything upstream): quickstart's problems, its policy
(SmolLM2 SFT'd on the demos, or --policy-dir, e.g. a later round's policy), one round
of best-of-N search, then the label stage once per --rollouts setting. Every labelled row carries the
oracle's verdicts and its problem's solve rate, so the agreement of each label kind
with the oracle is reported per solve-rate bucket (`R@LO-HI` labels only the problems
whose solve rate is in [LO, HI], as prm.min/max_solve_rate do in the loop):

- mc_soft:   the soft Monte-Carlo value (fraction of rollouts reaching the answer);
- mc_hard:   the hard one (1 if any rollout does; a correct solution is all 1);
- outcome:   the same solutions' correctness on every step (what an ORM, a verifier
             or an implicit PRM learns from: no rollouts at all).

Metrics (reward/quality.py): agreement of (label >= 0.5) with the oracle, AUC of the
label against it, mean |label - oracle|, and the oracle's positive rate.

    taskset -c 1 .venv/bin/python bench/label_noise.py --rollouts 2 8@0.1-0.9   # SFTs SmolLM2 first (~6 GB RSS)
    .venv/bin/python bench/label_noise.py --policy-dir runs/artifacts/policy-r3/<key> --problems 96
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# (name, low, high): solve-rate buckets, inclusive; "informative" is the default filter.
BUCKETS = (("all", 0.0, 1.0), ("unsolved", 0.0, 0.0), ("informative", 0.1, 0.9), ("rare", 1e-9, 0.0999),
           ("easy", 0.9001, 1.0))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--experiment", default="quickstart")
    p.add_argument("--problems", type=int, default=32, help="searched (and labelled) problems")
    p.add_argument("--n", type=int, default=8, help="best-of-N candidates per problem")
    p.add_argument("--rollouts", nargs="+", default=["2", "8"],
                   help="rollouts per prefix, one label run each; R@LO-HI labels only problems whose solve rate "
                        "is in [LO, HI] (cheaper: e.g. 8@0.1-0.9), plain R labels every searched problem")
    p.add_argument("--solutions-per-problem", type=int, default=2)
    p.add_argument("--backend", default="hf", help="generation.backend (hf keeps to the cores taskset allows)")
    p.add_argument("--policy-dir", help="a policy stage directory (holding model/); default: SFT the base model")
    p.add_argument("--run-dir", default="/tmp/searchlearn-bench/label-noise")
    p.add_argument("--override", nargs="*", default=[], help="more config overrides")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "label_noise.json"))
    return p.parse_args(argv)


def log(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


def policy_ref(cfg, args, run_dir: str, problems: dict) -> dict:
    """The policy as stages take it: a directory holding model/. --policy-dir may be a
    policy stage directory or a bare checkpoint (then linked in as model/)."""
    from searchlearn.artifacts import artifact_ref, sha256_path
    from searchlearn.stages.policy import base_model_stage, sft_stage

    if args.policy_dir:
        given = Path(args.policy_dir).resolve()
        if (given / "model").is_dir():
            return artifact_ref(given)
        sha = sha256_path(given)
        wrapper = Path(run_dir) / "given-policy" / sha[:16]
        wrapper.mkdir(parents=True, exist_ok=True)
        if not (wrapper / "model").exists():
            (wrapper / "model").symlink_to(given)
        return {"path": str(wrapper), "sha": sha}
    base = base_model_stage(cfg, problems).run(run_dir)
    log("SFT on the demos ...")
    return sft_stage(cfg, base, problems).run(run_dir)


def label_rows(cfg, policy: dict, searched: dict, run_dir: str) -> tuple[list[dict], dict]:
    """(step rows, merged metrics) of one label stage over the searched problems."""
    from prm_quickstart import label  # bench/ is this script's directory

    from searchlearn.reward.labels import read_labelled_steps
    from searchlearn.stages.labels import LABELS_FILE

    merged = label(cfg, policy, searched, 1, run_dir)
    return read_labelled_steps(Path(merged["path"]) / LABELS_FILE), merged


def correct(row: dict) -> bool:
    """A labelled solution's outcome: its answer step's label is the verifier's verdict."""
    from searchlearn.formatting import is_answer_step

    return is_answer_step(row["steps"][-1]) and row["labels"][-1] == 1.0


def hard(rows: list[dict]) -> list[dict]:
    """Hard Monte-Carlo labels from the soft ones of the same rollouts, as
    labels.estimate_step_labels makes them: all 1 on a correct solution, else 1 where
    any rollout reached the answer."""
    return [{**r, "labels": [1.0] * len(r["labels"]) if correct(r) else [float(y > 0) for y in r["labels"]]}
            for r in rows]


def outcome(rows: list[dict]) -> list[dict]:
    """The same solutions with their outcome on every step: what an ORM, a verifier or
    an implicit PRM learns from."""
    return [{**r, "labels": [float(correct(r))] * len(r["labels"])} for r in rows]


def bucketed(rows: list[dict]) -> dict:
    from searchlearn.reward.quality import label_agreement

    out = {}
    for name, low, high in BUCKETS:
        inside = [r for r in rows if low <= r.get("solve_rate", 0.0) <= high]
        out[name] = {"problems": len({r["problem_id"] for r in inside}), "solutions": len(inside),
                     **label_agreement(inside, "")}
    return out


def main(argv=None) -> int:
    from searchlearn.config import load_config
    from searchlearn.learn.scaffold import configure_cpu
    from prm_quickstart import search  # bench/ is this script's directory

    from searchlearn.stages.data import problems_stage

    args = parse_args(argv)
    configure_cpu()
    run_dir = str(Path(args.run_dir).resolve())
    base = [f"search.problems_per_round={args.problems}", f"search.n={args.n}", "search.algorithm=best_of_n",
            f"generation.backend={args.backend}", "prm.enabled=true", "prm.problems_per_round=0",
            "prm.min_solve_rate=0", "prm.max_solve_rate=1",
            f"prm.solutions_per_problem={args.solutions_per_problem}", *args.override]
    cfg = load_config(args.experiment, base)
    start = time.perf_counter()
    problems = problems_stage(cfg).run(run_dir)
    policy = policy_ref(cfg, args, run_dir, problems)
    log("searching ...")
    searched = search(cfg, policy, problems, None, 1, run_dir)
    report = {"experiment": args.experiment, "policy": policy["path"], "problems": args.problems, "n": args.n,
              "search.solved": searched["search.solved"], "search.candidate_acc": searched["search.candidate_acc"],
              "search.any_correct": searched["search.any_correct"], "by_rollouts": {}}
    for spec in args.rollouts:
        r, _, bounds = spec.partition("@")
        low, high = bounds.split("-") if bounds else ("0", "1")
        log(f"labelling with {r} rollouts per prefix, solve rates {low}-{high} ...")
        cfg_r = load_config(args.experiment, [*base, f"prm.rollouts={r}", f"prm.min_solve_rate={low}",
                                              f"prm.max_solve_rate={high}"])
        rows, merged = label_rows(cfg_r, policy, searched, run_dir)
        report["by_rollouts"][spec] = {
            "rollout_tokens": merged.get("labels.tokens", 0), "generate_s": merged.get("labels.generate_seconds"),
            "mc_soft": bucketed(rows), "mc_hard": bucketed(hard(rows)), "outcome": bucketed(outcome(rows)),
        }
    report["seconds"] = round(time.perf_counter() - start, 1)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2, default=float) + "\n")
    print_table(report)
    return 0


def print_table(report: dict) -> None:
    print(f"{report['experiment']}: {report['problems']} problems x best-of-{report['n']}, policy {report['policy']}; "
          f"candidate accuracy {report['search.candidate_acc']:.3f}, any correct {report['search.any_correct']:.3f}")
    print(f"{'labels':<22}{'bucket':<13}{'problems':>9}{'steps':>7}{'agree':>8}{'AUC':>7}{'MAE':>7}{'oracle+':>9}")
    lines = [(f"{kind} R={r}", b[kind]) for kind in ("mc_soft", "mc_hard", "outcome")
             for r, b in report["by_rollouts"].items()]
    for name, buckets in lines:
        for bucket, m in buckets.items():
            if m.get("steps"):
                print(f"{name:<22}{bucket:<13}{m['problems']:>9}{m['steps']:>7}{m['agreement']:>8.3f}"
                      f"{m['auc']:>7.3f}{m['mae']:>7.3f}{m['positive_rate']:>9.3f}")


if __name__ == "__main__":
    sys.exit(main())
