"""Training in the flow's process vs under `accelerate launch` with N processes, on the
same SFT job with the same global batch (batch_size = global / N per process).

    .venv/bin/python bench/train_launch.py --experiment quickstart --processes 1 2 --steps 8

Prints per setting: wall time of the stage (process start-up included), the
optimizer loop's time, tokens/s, peak RSS (this process, and the largest child),
first/last loss and the largest weight difference from the 1-process model. The
base model and problems come from the experiment's config and are cached under
--run-dir; the SFT outputs are rebuilt every time.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--experiment", default="quickstart")
    ap.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--global-batch", type=int, default=8)
    ap.add_argument("--run-dir", default="runs/bench-train-launch")
    args = ap.parse_args()

    from omegaconf import OmegaConf

    from searchlearn.config import load_config
    from searchlearn.stages.data import prepare_problems
    from searchlearn.stages.policy import demo_examples, materialize_policy, sft_policy

    cfg = load_config(args.experiment, [])
    run_dir = Path(args.run_dir).resolve()
    section = lambda node: OmegaConf.to_container(node, resolve=True)  # noqa: E731
    data = prepare_problems(section(cfg.problems), cfg.init.num_demos, run_dir / "problems")
    base = materialize_policy(section(cfg.policy), data["path"], cfg.seed, run_dir / "base")
    print(f"{args.experiment}: {cfg.policy.source}, {len(demo_examples(data['path']))} demos, "
          f"{args.steps} steps of {args.global_batch} examples", flush=True)

    rows, states = [], {}
    for n in args.processes:
        if args.global_batch % n:
            raise SystemExit(f"--global-batch {args.global_batch} is not divisible by {n} processes")
        init_cfg = section(cfg.init)
        init_cfg["train"].update(batch_size=args.global_batch // n, max_steps=args.steps, logging_steps=1)
        out = run_dir / f"sft-{n}"
        shutil.rmtree(out, ignore_errors=True)
        launch = None if n == 1 else {"processes": n, "config": ""}
        start = time.perf_counter()
        ref = sft_policy(base["path"], data["path"], init_cfg, cfg.seed, out, launch)
        wall = time.perf_counter() - start
        states[n] = _state(out / "model")
        rows.append({"processes": n, "ran_in": ref["sft.processes"], "wall_s": round(wall, 1),
                     "train_s": ref["sft.train_s"], "tokens_per_s": ref["sft.tokens_per_s"],
                     "first_loss": round(ref["sft.first_loss"], 4), "last_loss": round(ref["sft.last_loss"], 4),
                     "rss_gib": _gib(resource.RUSAGE_SELF), "child_rss_gib": _gib(resource.RUSAGE_CHILDREN)})
        print(json.dumps(rows[-1]), flush=True)
    if 1 in states:
        for row in rows:
            a, b = states[1], states[row["processes"]]
            row["max_weight_diff_vs_1"] = max(float((a[k] - b[k]).abs().max()) for k in a)
    print(f"\n{'procs':>5s} {'wall s':>7s} {'train s':>8s} {'tok/s':>7s} {'first loss':>10s} {'last loss':>9s} "
          f"{'RSS GiB':>8s} {'child RSS':>9s} {'max |dw| vs 1':>13s}")
    for r in rows:
        print(f"{r['processes']:>5d} {r['wall_s']:>7.1f} {r['train_s']:>8.1f} {r['tokens_per_s']:>7.0f} "
              f"{r['first_loss']:>10.4f} {r['last_loss']:>9.4f} {r['rss_gib']:>8.2f} {r['child_rss_gib']:>9.2f} "
              f"{r.get('max_weight_diff_vs_1', float('nan')):>13.2e}")


def _state(model_dir: Path) -> dict:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(model_dir).state_dict()


def _gib(who: int) -> float:
    return round(resource.getrusage(who).ru_maxrss / 2**20, 2)  # ru_maxrss is KiB on Linux


if __name__ == "__main__":
    main()
