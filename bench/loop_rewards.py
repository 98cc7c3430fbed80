"""The reward pillar of a finished run with `prm.enabled=true`, round by round: the
Monte-Carlo labels against the exact oracle, each trained reward model's training
figures, and its reranking on the run's held-out problems, with paired intervals.

    .venv/bin/python bench/loop_rewards.py --run-dir runs --out bench/results/quickstart_prm.json

Reads the stages the flow wrote (labels-r<k>, <kind>-r<k>, rerank-r<k>: those its
round runs recorded in the run dir's MLflow store, not a benchmark's later outputs of
the same stages; prm_quickstart.latest) and runs bench/policy_confidence.py's comparison on each
round's reranked candidates (`--skip-policy`: the reward models only, nothing is
sampled or scored again), with the run's `prm.kind` as the model the others are paired
against. Needs a run whose evaluate-reranking stage ran (prm.enabled, eval.num_problems).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import policy_confidence  # noqa: E402  (bench/ is on sys.path)
from prm_quickstart import completed, latest  # noqa: E402

LABEL_KEYS = ("problems_labelled", "solutions", "labelled_steps", "rollouts", "generate_seconds", "oracle_agreement",
              "oracle_auc", "outcome_oracle_agreement", "outcome_oracle_auc")
TRAIN_KEYS = ("data.rows", "train.steps", "train.first_loss", "train.last_loss", "eval_auc_oracle", "eval_oracle_steps")


def rounds_of(run_dir: Path) -> list[int]:
    found = sorted(int(d.name.split("-r")[1]) for d in (run_dir / "artifacts").glob("rerank-r*")
                   if completed(run_dir, d.name))
    if not found:
        raise SystemExit(f"no rerank-r<k> stage under {run_dir}/artifacts: run with prm.enabled=true first")
    return found


def one_round(run_dir: Path, r: int, guide: str) -> dict:
    labels = latest(run_dir, f"labels-r{r}")
    rerank = latest(run_dir, f"rerank-r{r}")
    selectors = {k.split(".")[1] for k in rerank if k.endswith(".candidate_auc")}  # <kind>_min, <kind>_last, orm
    kinds = sorted({s.removesuffix("_min") for s in selectors if not s.endswith("_last") and s != "position_baseline"})
    models = {k: latest(run_dir, f"{k}-r{r}") for k in kinds}  # one stage read per kind
    trained = {k: {key: m.get(f"{k}.{key}") for key in TRAIN_KEYS} for k, m in models.items()}
    against = f"{guide}_min" if f"{guide}_min" in selectors else guide  # an orm has one selector
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "compare.json"
        policy_confidence.main(["--loop-dir", str(run_dir), "--rounds", str(r), "--skip-policy",
                                "--rerank-dir", rerank["path"], "--against", against, "--out", str(out)])
        compared = json.loads(out.read_text())
    return {"labels": {k: labels.get(f"labels.{k}") for k in LABEL_KEYS}, "trained": trained,
            "rerank_dir": rerank["path"], "rerank_seconds": rerank.get("rerank.seconds"),
            **{k: compared[k] for k in ("problems", "candidates", "pass_at_n", "scorers", "candidate_auc_differences",
                                        "step_auc_oracle_differences")}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run-dir", required=True, help="run_dir of a finished run with prm.enabled=true")
    p.add_argument("--kind", default="implicit_step", help="the run's prm.kind: the model the others are paired "
                                                           "against")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    run_dir = Path(args.run_dir).resolve()
    report = {"run_dir": str(run_dir), "kind": args.kind,
              "rounds": {r: one_round(run_dir, r, args.kind) for r in rounds_of(run_dir)}}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nper round (95 % intervals over {next(iter(report['rounds'].values()))['problems']} held-out problems)")
    for r, row in report["rounds"].items():
        lab = row["labels"]
        print(f"round {r}: {lab['solutions']} labelled solutions, {lab['labelled_steps']} steps, MC soft agreement "
              f"{lab['oracle_agreement']:.3f} (AUC {lab['oracle_auc']:.3f}); pass@16 {row['pass_at_n']['n16']:.3f}")
        for name, m in row["scorers"].items():
            bon = m["bon"]["n16"]
            print(f"  {name:>20}: pooled step AUC {m['step_auc_oracle']['auc']:.3f} candidate AUC "
                  f"{m['candidate_auc']['auc']:.3f} weighted BoN16 {bon['weighted']['acc']:.3f} - majority "
                  f"{bon['majority']['acc']:.3f} = {bon['weighted']['minus_majority']['diff']:+.3f} "
                  f"{bon['weighted']['minus_majority']['ci95']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
