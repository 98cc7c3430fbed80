"""Test-time compute scaling: every search algorithm on held-out problems at
budgets of 2^1..2^5 samples' worth, recording accuracy against generated tokens.

    .venv/bin/python bench/search_scaling.py --run-dir runs/tiny_prm --round 2 --budgets 2 4 8
    .venv/bin/python bench/search_scaling.py --run-dir runs --round 3          # quickstart with prm.enabled

Reads the policy and PRM of a finished run's round (paths from its stage
outputs), runs best-of-N (majority and PRM-weighted), beam search, DVTS and
MCTS at each budget with one shared generator, and prints one row per
(algorithm, budget): accuracy, tokens per problem, tokens/s.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ALGORITHMS = {
    "bon-majority": ("best_of_n", {"selection": "majority"}),
    "bon-weighted": ("best_of_n", {"selection": "weighted", "aggregation": "min"}),
    "beam": ("beam_search", {"expansions": 2}),
    "dvts": ("dvts", {"expansions": 2}),
    "mcts": ("mcts", {"expansions": 2}),
}


def latest(run_dir: Path, stage: str) -> Path:
    """The most recently completed output of a stage (e.g. policy-r2, prm-r2)."""
    outs = sorted((p for p in (run_dir / "artifacts" / stage).glob("*") if (p / "_COMPLETE").exists()),
                  key=lambda p: p.stat().st_mtime)
    if not outs:
        raise SystemExit(f"no completed {stage} under {run_dir}/artifacts")
    return outs[-1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run-dir", required=True)
    ap.add_argument("--round", type=int, required=True)
    ap.add_argument("--budgets", type=int, nargs="+", default=[2, 4, 8, 16, 32])
    ap.add_argument("--problems", type=int, default=50)
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--max-new-tokens", type=int, default=128)
    args = ap.parse_args()

    from searchlearn.generation import make_generator
    from searchlearn.reward import load_scorer
    from searchlearn.search import ALGORITHMS as REGISTRY, SearchBudget
    from searchlearn.stages.data import test_problems

    run_dir = Path(args.run_dir).resolve()
    policy = latest(run_dir, f"policy-r{args.round}") / "model"
    scorer = load_scorer("prm", str(latest(run_dir, f"prm-r{args.round}") / "model"))
    problems = test_problems(latest(run_dir, "problems"), args.problems)
    gen = make_generator(str(policy), {"backend": args.backend}, seed=0)  # other settings: schema defaults
    rows = []
    for n in args.budgets:
        budget = SearchBudget(n=n, temperature=0.8, max_new_tokens=args.max_new_tokens, max_step_tokens=48,
                              max_steps=8)
        for label, (name, kwargs) in ALGORITHMS.items():
            start, before = time.perf_counter(), gen.stats.tokens
            results = REGISTRY[name](**kwargs).search(problems, gen, scorer, budget)
            secs = time.perf_counter() - start
            tokens = gen.stats.tokens - before
            rows.append({"algorithm": label, "n": n, "accuracy": sum(r.solved for r in results) / len(results),
                         "tokens_per_problem": tokens / len(results), "tokens_per_s": tokens / secs,
                         "seconds": secs})
            print(json.dumps(rows[-1]), flush=True)
    print(f"\n{'algorithm':14s} {'n':>3s} {'acc':>6s} {'tok/problem':>12s} {'tok/s':>8s}")
    for r in rows:
        print(f"{r['algorithm']:14s} {r['n']:3d} {r['accuracy']:6.3f} {r['tokens_per_problem']:12.0f} "
              f"{r['tokens_per_s']:8.0f}")


if __name__ == "__main__":
    main()
