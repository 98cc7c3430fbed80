"""Benchmark: does guided search make better training data? One more round of a
finished quickstart run, learned from each kind of search data, at about equal
generated tokens, then evaluated greedy on the held-out problems.

From the round-R policy of a finished quickstart run (`make run`, or bench/arms.py's
loop arm) and a reward model trained on its labels (bench/prm_quickstart.py writes
`<kind>-r<R>` into the same run directory), each arm runs the recipe's own stages (no
Prefect, no MLflow; cached in that run directory) on round R+1's fresh training
problems:

- bon_rft:   best-of-N with majority vote (quickstart's round), RFT on verified traces;
- beam_rft:  PRM-guided beam search, RFT on its verified solutions;
- mcts_rft:  PRM-guided MCTS (the verifier values terminals: training data only), RFT;
- mcts_dpo:  the same MCTS trees, DPO on step-level pairs (sibling steps whose values
             differ by at least learn.dpo.min_margin, as in MCTS-DPO) and solution pairs.

Each arm's search budget is set so it generates about the same tokens as best-of-N
(the tokens each really generated are reported). Accuracy on the held-out problems
with 95 % intervals, and the paired difference to the round-R policy.

    .venv/bin/python bench/data_quality.py --loop-dir runs/bench-arms/loop
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

# name: (search overrides, learn overrides)
ARMS = {
    "bon_rft": (["search.algorithm=best_of_n"], ["learn.algorithm=rft"]),
    "beam_rft": (["search.algorithm=beam_search", "search.beam_search.expansions=2", "prm.enabled=true"], ["learn.algorithm=rft"]),
    "mcts_rft": (["search.algorithm=mcts", "search.mcts.use_verifier=true", "search.mcts.expansions=2", "prm.enabled=true"],
                 ["learn.algorithm=rft"]),
    "mcts_dpo": (["search.algorithm=mcts", "search.mcts.use_verifier=true", "search.mcts.expansions=2", "prm.enabled=true"],
                 ["learn.algorithm=dpo", "learn.dpo.pairs=both"]),
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--loop-dir", default="runs/bench-arms/loop")
    p.add_argument("--experiment", default="quickstart")
    p.add_argument("--round", type=int, default=3, help="start from this round's policy; search round R+1")
    p.add_argument("--kind", default="prm", help="the reward model that guides search (<kind>-r<round>)")
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    p.add_argument("--budgets", nargs="*", default=[], metavar="ARM=N",
                   help="search.n per arm (default: quickstart's search.n for every arm)")
    p.add_argument("--override", nargs="*", default=[], help="overrides for every arm")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "data_quality.json"))
    return p.parse_args(argv)


def log(*parts) -> None:
    print(time.strftime("%H:%M:%S"), *parts, file=sys.stderr, flush=True)


def records(eval_ref: dict) -> dict[str, int]:
    rows = [json.loads(line) for line in (Path(eval_ref["path"]) / "records.jsonl").read_text().splitlines()]
    return {r["id"]: int(bool(r["greedy_correct"])) for r in rows}


def paired(a: dict[str, int], b: dict[str, int]) -> dict:
    """a - b problem by problem (the same held-out problems), with its bootstrap interval."""
    from prm_quickstart import bootstrap_diff

    return bootstrap_diff([a[k] - b[k] for k in a])


def main(argv=None) -> int:
    from prm_quickstart import interval, latest, search

    from searchlearn.config import load_config
    from searchlearn.learn.scaffold import configure_cpu
    from searchlearn.stages.evaluate import eval_stage
    from searchlearn.stages.learn import learn_stage

    args = parse_args(argv)
    configure_cpu()
    run_dir = Path(args.loop_dir).resolve()
    budgets = dict(spec.split("=") for spec in args.budgets)
    problems, policy = latest(run_dir, "problems"), latest(run_dir, f"policy-r{args.round}")
    scorer = latest(run_dir, f"{args.kind}-r{args.round}")
    base_eval = latest(run_dir, f"eval-r{args.round}")
    r = args.round + 1
    report = {"experiment": args.experiment, "loop_dir": str(run_dir), "start_policy": policy["path"],
              "scorer": scorer["path"], "round": r, "start": {"greedy_acc": base_eval["eval.greedy_acc"]},
              "arms": {}}
    for arm in args.arms:
        search_over, learn_over = ARMS[arm]
        n = [f"search.n={budgets[arm]}"] if arm in budgets else []
        cfg = load_config(args.experiment, [f"run_dir={run_dir}", *search_over, *learn_over, *n, *args.override])
        start = time.perf_counter()
        log(f"{arm}: searching round {r}'s problems ({cfg.search.algorithm}, n={cfg.search.n}) ...")
        guide = scorer if cfg.search.algorithm != "best_of_n" else None
        searched = search(cfg, policy, problems, guide, r, str(run_dir))
        search_s = time.perf_counter() - start
        log(f"{arm}: learning ({cfg.learn.algorithm}) ...")
        learned = learn_stage(cfg, policy, policy, [searched], None, r).run(str(run_dir))
        evaluated = eval_stage(cfg, learned, problems, r).run(str(run_dir))
        acc, n_problems = evaluated["eval.greedy_acc"], evaluated["eval.problems"]
        report["arms"][arm] = {
            "search": {k: v for k, v in searched.items() if k.startswith("search.")},
            "learn": {k: v for k, v in learned.items() if k.startswith("learn.")},
            "greedy_acc": acc, "problems": n_problems, "ci95": interval(acc, n_problems),
            "vs_start": paired(records(evaluated), records(base_eval)),
            "seconds": round(time.perf_counter() - start, 1), "search_seconds": round(search_s, 1)}
        log(arm, json.dumps({k: v for k, v in report["arms"][arm].items() if k not in ("learn",)}))
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)  # after every arm: a stopped run keeps its arms
        Path(args.out).write_text(json.dumps(report, indent=2, default=float) + "\n")
    print_table(report)
    return 0


def print_table(report: dict) -> None:
    print(f"\nround {report['round']} from the round-{report['round'] - 1} policy "
          f"(greedy {report['start']['greedy_acc']:.3f}); held-out greedy, 95 % intervals")
    print(f"{'arm':<10}{'gen. tokens':>12}{'solved':>8}{'trained on':>22}{'greedy':>8}{'interval':>17}"
          f"{'vs start (paired)':>26}")
    for arm, a in report["arms"].items():
        s, learn = a["search"], a["learn"]
        data = (f"{learn.get('learn.dpo.pairs', learn.get('learn.data.pairs', ''))} pairs"
                if "learn.dpo.pairs" in learn or "learn.data.pairs" in learn
                else f"{learn.get('learn.data.examples', learn.get('learn.rft.examples', '?'))} traces")
        v = a["vs_start"]
        print(f"{arm:<10}{s.get('search.tokens', 0):>12}{s.get('search.solved', 0):>8.3f}{data:>22}"
              f"{a['greedy_acc']:>8.3f}  [{a['ci95'][0]:.3f},{a['ci95'][1]:.3f}]"
              f"   {v['diff']:+.3f} [{v['ci95'][0]:+.3f},{v['ci95'][1]:+.3f}]")


if __name__ == "__main__":
    sys.exit(main())
