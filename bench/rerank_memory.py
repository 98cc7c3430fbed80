"""Memory of the reranking stage with several reward models in one process.

The flow's `evaluate-reranking` stage draws one pool of samples per held-out problem,
then scores it with every trained reward model. Before searchlearn.memory's
release_heap, this process kept every model's high-water heap (keep_heap: no mmap, no
trim): a rerank with prm + verifier + implicit on 200 problems was OOM-killed at
24.3 GiB on the 24 GiB machine. Now each model is loaded after the samples are drawn,
one at a time, and its heap handed back before the next loads.

This runs that stage function (not cached: a fresh output directory) on the round-R
policy and reward models of a finished run, and records the process's RSS when each
model has scored (before and after its release) and the peak. `--no-release` replaces
release_heap with a no-op: the same path with the heap kept, for comparison. Run each
variant in its own process (the allocator state is process-wide):

    .venv/bin/python bench/rerank_memory.py --loop-dir runs/bench-arms/loop --problems 50
    .venv/bin/python bench/rerank_memory.py --loop-dir runs/bench-arms/loop --problems 50 --no-release
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def rss_gib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 2**20
    return 0.0


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--loop-dir", default="runs/bench-arms/loop")
    p.add_argument("--experiment", default="quickstart")
    p.add_argument("--round", type=int, default=3)
    p.add_argument("--kinds", nargs="+", default=["prm", "verifier", "implicit"])
    p.add_argument("--problems", type=int, default=50)
    p.add_argument("--n", type=int, default=16, help="samples per problem (best-of-N's largest N)")
    p.add_argument("--no-release", action="store_true", help="keep the heap between models (no release_heap)")
    p.add_argument("--out", help="write the figures here as JSON (default: print only)")
    args = p.parse_args(argv)

    from prm_quickstart import latest

    import searchlearn.memory as memory
    from searchlearn.config import load_config
    from searchlearn.stages.common import section
    from searchlearn.stages.evaluate import eval_config, evaluate_reranking

    run_dir = Path(args.loop_dir).resolve()
    cfg = load_config(args.experiment, [f"run_dir={run_dir}", "prm.enabled=true",
                                        f"prm.rerank_n=[1,{args.n}]", f"prm.rerank_problems={args.problems}"])
    policy, problems = latest(run_dir, f"policy-r{args.round}"), latest(run_dir, "problems")
    refs = {kind: latest(run_dir, f"{kind}-r{args.round}") for kind in args.kinds}
    events: list[dict] = []
    real_release = memory.release_heap

    def release() -> None:  # after each model has scored
        before = rss_gib()
        if not args.no_release:
            real_release()
        events.append({"after_model": len(events) + 1, "rss_gib_before_release": round(before, 2),
                       "rss_gib_after_release": round(rss_gib(), 2), "peak_gib": round(peak_gib(), 2)})
        print(json.dumps(events[-1]), flush=True)

    memory.release_heap = release  # evaluate_reranking imports it when called
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rerank-memory-") as tmp:
        metrics = evaluate_reranking(str(Path(policy["path"]) / "model"), problems["path"], refs, section(cfg.prm),
                                     eval_config(cfg), section(cfg.generation), cfg.seed, Path(tmp) / "rerank")
    report = {"kinds": args.kinds, "problems": args.problems, "n": args.n, "release": not args.no_release,
              "events": events[:len(args.kinds)], "peak_gib": round(peak_gib(), 2),
              "seconds": round(time.perf_counter() - start, 1),
              "accuracy": {k: v for k, v in metrics.items() if k.endswith(f".n{args.n}") or "auc_oracle" in k}}
    print(json.dumps(report, indent=2))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
