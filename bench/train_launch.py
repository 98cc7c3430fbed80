"""Training in the flow's process vs under `accelerate launch` with N processes, on the
same SFT job with the same global batch (batch_size = global / N per process).

    .venv/bin/python bench/train_launch.py --experiment quickstart --processes 1 2 --steps 8

Prints per setting: wall time of the stage (process start-up included), the
optimizer loop's time, tokens/s, peak RSS (this process; and the peak of the
summed RSS of its child processes, sampled every 0.2 s: ru_maxrss cannot be used
for children, the kernel keeps the forking parent's high-water mark across exec),
first/last loss and the largest weight difference from the 1-process model. The
base model and problems come from the experiment's config and are cached under
--run-dir; the SFT outputs are rebuilt every time.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import threading
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
        init_cfg["train"].update(batch_size=args.global_batch // n, max_steps=args.steps)
        out = run_dir / f"sft-{n}"
        shutil.rmtree(out, ignore_errors=True)
        launch = None if n == 1 else {"processes": n, "config": ""}
        start = time.perf_counter()
        with RssSampler() as rss:
            ref = sft_policy(base["path"], data["path"], init_cfg, cfg.seed, out, launch)
        wall = time.perf_counter() - start
        states[n] = _state(out / "model")
        rows.append({"processes": n, "ran_in": ref["sft.train.processes"], "wall_s": round(wall, 1),
                     "train_s": ref["sft.train.train_s"], "tokens_per_s": ref["sft.train.tokens_per_s"],
                     "first_loss": round(ref["sft.train.first_loss"], 4), "last_loss": round(ref["sft.train.last_loss"], 4),
                     "rss_gib": round(rss.self_peak / 2**30, 2), "children_rss_gib": round(rss.children_peak / 2**30, 2)})
        print(json.dumps(rows[-1]), flush=True)
    if 1 in states:
        for row in rows:
            a, b = states[1], states[row["processes"]]
            row["max_weight_diff_vs_1"] = max(float((a[k] - b[k]).abs().max()) for k in a)
    print(f"\n{'procs':>5s} {'wall s':>7s} {'train s':>8s} {'tok/s':>7s} {'first loss':>10s} {'last loss':>9s} "
          f"{'RSS GiB':>8s} {'children':>9s} {'max |dw| vs 1':>13s}")
    for r in rows:
        print(f"{r['processes']:>5d} {r['wall_s']:>7.1f} {r['train_s']:>8.1f} {r['tokens_per_s']:>7.0f} "
              f"{r['first_loss']:>10.4f} {r['last_loss']:>9.4f} {r['rss_gib']:>8.2f} {r['children_rss_gib']:>9.2f} "
              f"{r.get('max_weight_diff_vs_1', float('nan')):>13.2e}")


def _state(model_dir: Path) -> dict:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(model_dir).state_dict()


class RssSampler:
    """Peak RSS of this process and peak summed RSS of its descendants, while open."""

    def __init__(self, every_s: float = 0.2):
        self.every_s, self.self_peak, self.children_peak = every_s, 0, 0
        self._stop = threading.Event()

    def __enter__(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop.is_set():
            self.self_peak = max(self.self_peak, me.memory_info().rss)
            total = 0
            for child in me.children(recursive=True):
                try:
                    total += child.memory_info().rss
                except psutil.NoSuchProcess:
                    pass
            self.children_peak = max(self.children_peak, total)
            self._stop.wait(self.every_s)


if __name__ == "__main__":
    main()
