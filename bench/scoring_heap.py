"""Peak memory of implicit-PRM scoring by batch order (prm.length_batches).

Scorers run under keep_heap (no mmap, no trim: fast steps on this VM). Batched
shortest first, each batch needed a little more than any block freed before it, and
the heap grew with the number of candidates: the implicit PRM's rerank of 3,200
candidates was OOM-killed at 24 GiB alone on this machine. Longest first, later
batches fit in the first one's freed blocks. This scores the same synthetic solutions
(random token ids, lengths like quickstart's candidates) with a trained implicit PRM
in both orders; run each order in its own process (the allocator state is process-wide):

    .venv/bin/python bench/scoring_heap.py --order longest
    .venv/bin/python bench/scoring_heap.py --order shortest
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--loop-dir", default="runs/bench-arms/loop")
    p.add_argument("--round", type=int, default=3)
    p.add_argument("--order", choices=["longest", "shortest"], default="longest")
    p.add_argument("--solutions", type=int, default=320)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--out", help="append the figures to this JSON file (a list of runs)")
    args = p.parse_args(argv)

    import torch
    from prm_quickstart import latest
    from rerank_memory import peak_gib, rss_gib

    import searchlearn.reward.implicit as implicit
    from searchlearn.learn.scaffold import configure_cpu
    from searchlearn.memory import keep_heap
    from searchlearn.reward.prm import length_batches, read_prm_config

    configure_cpu()
    model_dir = Path(latest(Path(args.loop_dir).resolve(), f"implicit-r{args.round}")["path"]) / "model"
    policy, ref = (implicit.load_for_scoring(d, torch.bfloat16) for d in (model_dir, read_prm_config(model_dir)["ref_dir"]))
    if args.order == "shortest":  # the order before length_batches
        implicit.length_batches = lambda lengths, size: length_batches(lengths, size)[::-1]
    rng = random.Random(0)
    encoded = []
    for _ in range(args.solutions):  # prompt 30-60 tokens, solution up to 260 in all
        n, start = rng.randint(80, 260), rng.randint(30, 60)
        encoded.append(([rng.randint(100, 40000) for _ in range(n)], [start + 10, n - 1], start))
    keep_heap()  # as ImplicitPRMScorer does
    base, t = rss_gib(), time.perf_counter()
    implicit.implicit_scores(policy, ref, encoded, 0, args.batch_size, beta=0.05)
    row = {"order": args.order, "solutions": args.solutions, "batch_size": args.batch_size,
           "rss_gib_models": round(base, 2), "rss_gib_after": round(rss_gib(), 2), "peak_gib": round(peak_gib(), 2),
           "seconds": round(time.perf_counter() - t, 1)}
    print(json.dumps(row))
    if args.out:
        out = Path(args.out)
        rows = json.loads(out.read_text()) if out.exists() else []
        out.write_text(json.dumps(rows + [row], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
