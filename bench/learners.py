"""rft vs dpo vs grpo on the same experiment: held-out greedy accuracy per round,
tokens generated and wall time per learner.

    .venv/bin/python bench/learners.py --experiment tiny --rounds 2
    .venv/bin/python bench/learners.py --experiment quickstart --rounds 2 --run-dir runs

All learners share one run dir, so prepare-problems, init, SFT, the round-0
evaluation and round 1's search come from the cache after the first learner: the
table compares what differs. Each learner runs the real flow (Prefect + MLflow).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--experiment", default="tiny")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--learners", nargs="+", default=["rft", "dpo", "grpo"])
    ap.add_argument("--run-dir", default=None, help="default: runs/bench-learners-<experiment>")
    ap.add_argument("--override", nargs="*", default=[], help="extra overrides for every learner")
    args = ap.parse_args()

    from flows.search_and_learn import search_and_learn

    run_dir = Path(args.run_dir or f"runs/bench-learners-{args.experiment}").resolve()
    results = {}
    for learner in args.learners:
        overrides = [f"run_dir={run_dir}", f"rounds={args.rounds}", f"learn.algorithm={learner}", *args.override]
        start = time.perf_counter()
        history = search_and_learn.with_options(result_storage=run_dir / "prefect-results")(
            experiment=args.experiment, overrides=overrides)
        results[learner] = {"seconds": time.perf_counter() - start, "history": history}
        print(json.dumps({"learner": learner, "seconds": round(results[learner]["seconds"], 1),
                          "greedy": [row["eval.greedy_acc"] for row in history]}), flush=True)
    print(f"\n{args.experiment}, {args.rounds} rounds, run dir {run_dir}")
    print(f"{'learner':8s} {'greedy acc per round':34s} {'maj@k last':>10s} {'gen. tokens':>13s} "
          f"{'learn s':>8s} {'flow s':>7s}")
    for learner, res in results.items():
        h = res["history"]
        accs = " ".join(f"{row['eval.greedy_acc']:.3f}" for row in h)
        # Generated tokens: search (all learners) + GRPO's own rollouts (an estimate, see learn/grpo.py).
        tokens = sum(row.get("search.tokens", 0) + row.get("learn.grpo.generated_tokens_est", 0) for row in h[1:])
        learn_s = sum(row.get("learn.train.wall_s", 0.0) for row in h[1:])
        maj = next((v for k, v in h[-1].items() if k.startswith("eval.maj_at_")), float("nan"))
        print(f"{learner:8s} {accs:34s} {maj:10.3f} {tokens:13d} "
              f"{learn_s:8.0f} {res['seconds']:7.0f}")


if __name__ == "__main__":
    main()
