"""Benchmark: what a majority-vote search spent scoring candidates it never reads.

Before 2026-12-06 a run with prm.enabled gave last round's reward model to every
round-2+ search shard, and best-of-N scored every candidate with it even under
`selection: majority`. Now `stages.search.shard_stage` passes the model only where the
algorithm reads scores. This re-runs one round's search shard of a finished run under
the current code (so without the model, as the flow now does) and compares it with that
run's stored shard (`--old`, the scored one): seconds in search, solve rate, tokens,
how many problems drew identical samples (vLLM on CPU is not bit-reproducible across
runs, so a re-run is a redraw), how many candidates carry scores.

    .venv/bin/python bench/search_scoring.py --run-dir runs/prm-flow --round 2 \\
        --old runs/prm-flow/artifacts/search-shards-r2/c64c4f1d2f8016b4 --out bench/results/search_scoring.json
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from prm_quickstart import latest  # noqa: E402


def shard_summary(out_dir: Path) -> dict:
    """A search shard's seconds (from its stage metadata) and its candidates' figures."""
    from searchlearn.stages.common import read_stage_meta

    rows = [json.loads(line) for line in (out_dir / "results.jsonl").read_text().splitlines()]
    cands = [c for r in rows for c in r["candidates"]]
    return {"dir": str(out_dir), "seconds": read_stage_meta(out_dir)["seconds"],
            "problems": len(rows), "candidates": len(cands), "solve_rate": sum(c["correct"] for c in cands) / len(cands),
            "tokens": sum(c["num_tokens"] for c in cands), "scored": sum(c.get("score") is not None for c in cands),
            "texts": [[c["text"] for c in r["candidates"]] for r in rows]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run-dir", required=True, help="a finished run with prm.enabled and a majority search")
    p.add_argument("--experiment", default="quickstart_prm", help="the variant the run resolves to")
    p.add_argument("--round", type=int, default=2)
    p.add_argument("--old", required=True, help="the run's stored (scored) search shard of that round")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)

    from searchlearn.config import load_config
    from searchlearn.sharding import plan_shards
    from searchlearn.stages.search import shard_stage

    run_dir = Path(args.run_dir).resolve()
    cfg = load_config(args.experiment, [f"run_dir={run_dir}"])
    problems, policy = latest(run_dir, "problems"), latest(run_dir, f"policy-r{args.round - 1}")
    scorer = latest(run_dir, f"{cfg.prm.kind}-r{args.round - 1}")  # what the flow hands the search
    [blocks] = plan_shards(cfg.search.problems_per_round, cfg.execution.block_size, 1)  # one shard, as the run had
    stage = shard_stage(cfg, policy, problems, scorer, args.round, cfg.execution.block_size, blocks)
    if stage.inputs["scorer_ref"] is not None:
        raise SystemExit(f"{args.experiment}'s search reads scores: nothing to compare")
    start = time.perf_counter()
    new = shard_summary(Path(stage.run(str(run_dir))["path"]))
    wall = time.perf_counter() - start
    old = shard_summary(Path(args.old).resolve())
    identical = sum(a == b for a, b in zip(old.pop("texts"), new.pop("texts")))
    report = {"run_dir": str(run_dir), "round": args.round, "old_scored": old, "new_unscored": new,
              "identical_problems": identical, "wall_s": round(wall, 1),
              "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
              "command": " ".join([".venv/bin/python", *sys.argv])}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"round {args.round} search: {old['seconds']:.0f} s scored, {new['seconds']:.0f} s unscored; "
          f"solve rate {old['solve_rate']:.3f} / {new['solve_rate']:.3f} over {new['candidates']} candidates; "
          f"{identical} of {new['problems']} problems drew identical samples")
    return 0


if __name__ == "__main__":
    sys.exit(main())
