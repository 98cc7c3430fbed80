"""Benchmark: the training heap against the number of batch shapes (train.pad_to_multiple_of).

Training keeps freed memory in the process (searchlearn.memory.keep_heap: no mmap, no
trim, because fresh pages are slow on these VMs). glibc then serves each batch's
activations from the heap, and with length-grouped batches nearly every batch has a
length of its own: a block freed by one batch is often too small for the next, and
the heap grows. An implicit_step training for 2 epochs on a quickstart run's labels
was OOM-killed at 24.2 GB. Padding every batch to a multiple of
`train.pad_to_multiple_of` tokens leaves a few shapes, whose blocks are reused.

This trains the implicit_step reward model (the trainer with the largest heap: the
policy and a frozen reference) for --epochs epochs, once per --multiples value, each
in its own child process, on labelled steps: quickstart-shaped ones by default (the
arithmetic demonstrations, each once right and once with its first step wrong), or
with --loop-dir the flow's label-steps output of each round of a finished quickstart
run (the real solutions, as bench/prm_quickstart.py trains on them). With --eval the
trainer also scores 15 % of the problems held out, as the flow's stage does. A thread
samples the child's RSS every 0.5 s. Reported per cell: seconds of training,
non-padding tokens/s, the first and last loss, the peak RSS of each phase (the
reference pass, the first and second half of training, the held-out evaluation and
the save), and the RSS curve at 20 points.

    .venv/bin/python bench/train_memory.py                    # 1 16 32, 600 rows, 2 epochs (~17 min)
    .venv/bin/python bench/train_memory.py --loop-dir runs/bench-arms/loop --rows 0 --eval --multiples 16
    .venv/bin/python bench/train_memory.py --multiples 16 --onednn-cache 1024 64 0
    .venv/bin/python bench/train_memory.py --multiples 16 --rewards log_ratio confidence \
        --out bench/results/train_memory_reward.json

The last one is why searchlearn caps oneDNN's primitive cache (searchlearn.memory
.limit_onednn_cache): at its default of 1,024 primitives, each batch shape's compiled
kernels and buffers stayed, and training grew through a second epoch.

Writes bench/results/train_memory.json. Figures on a shared 2-core machine drift:
compare the cells of one run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from train_throughput import RESULT_TAG, run_child  # bench/ is on sys.path (the script's own folder)

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--multiples", type=int, nargs="+", default=[1, 16, 32], help="train.pad_to_multiple_of values")
    p.add_argument("--onednn-cache", type=int, nargs="+", metavar="N",
                   help="ONEDNN_PRIMITIVE_CACHE_CAPACITY values to cross with --multiples (default: the package's, "
                        "searchlearn.memory.ONEDNN_CACHE_CAPACITY, unless the environment sets one)")
    p.add_argument("--rows", type=int, default=600, help="labelled-step rows to train on (0: all of --loop-dir's)")
    p.add_argument("--loop-dir", help="a finished quickstart run: train on its labelled steps (all rounds)")
    p.add_argument("--eval", action="store_true", help="hold out 15 %% of the problems and score them after training")
    p.add_argument("--epochs", type=float, default=2.0)
    p.add_argument("--rewards", nargs="+", default=["log_ratio"], choices=["log_ratio", "confidence"],
                   help="prm.implicit_step.reward values, one cell each: the log-ratio holds a frozen reference "
                        "beside the policy, the confidence reward none")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--model-dir", help="a HF checkpoint dir; default: SmolLM2 converted into --work-dir")
    p.add_argument("--work-dir", default="/tmp/searchlearn-bench")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "train_memory.json"))
    p.add_argument("--worker", type=int, help=argparse.SUPPRESS)  # internal: one cell's multiple
    p.add_argument("--reward", default="log_ratio", help=argparse.SUPPRESS)  # internal: one cell's reward
    return p.parse_args(argv)


def log(*parts) -> None:
    print(time.strftime("%H:%M:%S"), *parts, file=sys.stderr, flush=True)


def rss_gib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 2**20
    return float("nan")


class RssSampler:
    """(seconds, RSS GiB) every `period` seconds on a daemon thread, while in the block."""

    def __init__(self, period: float = 0.5):
        self.period, self.samples, self._stop = period, [], threading.Event()

    def __enter__(self):
        self.start = start = time.perf_counter()

        def run():
            while not self._stop.is_set():
                self.samples.append((time.perf_counter() - start, rss_gib()))
                self._stop.wait(self.period)

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def loop_rows(loop_dir: Path) -> tuple[list[dict], str]:
    """Every round's labelled steps (the flow's label-steps output of each: latest),
    and the last round's policy model dir."""
    from prm_quickstart import latest

    from searchlearn.reward.labels import read_labelled_steps
    from searchlearn.stages.labels import LABELS_FILE

    rounds = sorted(int(p.name[len("labels-r"):]) for p in (loop_dir / "artifacts").glob("labels-r*"))
    rows = [r for k in rounds for r in read_labelled_steps(Path(latest(loop_dir, f"labels-r{k}")["path"]) / LABELS_FILE)]
    return rows, str(Path(latest(loop_dir, f"policy-r{rounds[-1]}")["path"]) / "model")


class Phases:
    """(name, start, end) of each wrapped call, on the sampler's clock."""

    def __init__(self, clock_start: float):
        self.start, self.spans = clock_start, []

    def wrap(self, module, name: str) -> None:
        inner = getattr(module, name)

        def timed(*a, **k):
            began = time.perf_counter() - self.start
            try:
                return inner(*a, **k)
            finally:
                self.spans.append((name, began, time.perf_counter() - self.start))

        setattr(module, name, timed)


def worker(args) -> None:
    from dataclasses import asdict

    import searchlearn.reward.implicit_train as implicit_train
    from searchlearn.config.schema import TrainConfig
    from searchlearn.learn import scaffold
    from searchlearn.stages.reward import split_by_problem

    if args.loop_dir:
        rows, model_dir = loop_rows(Path(args.loop_dir))
    else:
        from train_throughput import demos, ensure_model, prm_rows

        model_dir, rows = ensure_model(args), prm_rows(demos(args, (args.rows + 1) // 2))
    rows = rows[: args.rows] if args.rows else rows
    train, held_out = split_by_problem(rows, 0.15, 0) if args.eval else (rows, [])
    cfg = {**asdict(TrainConfig()), "epochs": args.epochs, "learning_rate": 1e-4, "warmup_ratio": 0.1,
           "batch_size": args.batch_size, "pad_to_multiple_of": args.worker}
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as out, RssSampler() as rss:
        phases = Phases(rss.start)
        for module, name in ((implicit_train, "reference_log_probs"), (scaffold, "fit"),
                             (implicit_train, "evaluate_reward_model"), (scaffold, "save")):
            phases.wrap(module, name)
        metrics = implicit_train.train_implicit(model_dir, train, cfg, out, seed=0, eval_rows=held_out or None,
                                                targets="steps", reward=args.reward)
    row = {"reward": args.reward, "pad_to_multiple_of": args.worker,
           "onednn_cache": os.environ.get("ONEDNN_PRIMITIVE_CACHE_CAPACITY"),
           "rows": len(train), "held_out_rows": len(held_out),
           "epochs": args.epochs, "examples": metrics["data.examples"], "steps": metrics["train.steps"],
           "train_s": metrics["train.train_s"], "tok_s": metrics["train.tokens_per_s"],
           "loss_first": round(metrics["train.first_loss"], 4), "loss_last": round(metrics["train.last_loss"], 4),
           "eval_auc": metrics.get("eval_auc"), **phase_peaks(rss.samples, phases.spans),
           "peak_rss_gib": round(max(r for _, r in rss.samples), 2), "rss_curve_gib": curve(rss.samples)}
    print(RESULT_TAG + json.dumps(row), flush=True)


def phase_peaks(samples: list[tuple[float, float]], spans: list[tuple[str, float, float]]) -> dict:
    """Peak RSS (GiB) within each phase; training split into its two halves."""
    def peak(a: float, b: float) -> float | None:
        inside = [r for t, r in samples if a <= t <= b]
        return round(max(inside), 2) if inside else None

    out = {}
    for name, a, b in spans:
        if name == "fit":
            out["peak_fit_first_half_gib"], out["peak_fit_second_half_gib"] = peak(a, (a + b) / 2), peak((a + b) / 2, b)
        else:
            out[f"peak_{name}_gib"] = peak(a, b)
    return out


def curve(samples: list[tuple[float, float]], points: int = 20) -> list[float]:
    ram = [r for _, r in samples]
    return [round(max(ram[i * len(ram) // points:(i + 1) * len(ram) // points] or [ram[-1]]), 2)
            for i in range(points)]


def run_cell(args, multiple: int, onednn_cache: int | None, reward: str) -> dict:
    cmd = [sys.executable, __file__, "--worker", str(multiple), "--reward", reward, "--rows", str(args.rows),
           "--epochs", str(args.epochs), "--batch-size", str(args.batch_size), "--work-dir", args.work_dir]
    cmd += ["--model-dir", args.model_dir] if args.model_dir else []
    cmd += ["--loop-dir", args.loop_dir] if args.loop_dir else []
    cmd += ["--eval"] if args.eval else []
    extra = {} if onednn_cache is None else {"ONEDNN_PRIMITIVE_CACHE_CAPACITY": str(onednn_cache)}
    return run_child(cmd, f"{reward}, pad_to_multiple_of={multiple}, onednn cache {onednn_cache}", extra)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker is not None:
        worker(args)
        return 0
    if not args.loop_dir:
        from train_throughput import ensure_model

        args.model_dir = ensure_model(args)  # once, before the cells time anything
    cells = []
    for reward in args.rewards:
        for cache in args.onednn_cache or [None]:
            for multiple in args.multiples:
                log(f"implicit_step ({reward}), pad_to_multiple_of={multiple}, oneDNN cache "
                    f"{'default' if cache is None else cache}, {args.rows} rows x {args.epochs} epochs ...")
                cells.append(run_cell(args, multiple, cache, reward))
                log(json.dumps(cells[-1]))
    print(f"{'reward':>10} {'oneDNN':>6} {'multiple':>8} {'train s':>8} {'tok/s':>7} {'loss':>13} "
          f"{'fit 1st half':>12} {'fit 2nd half':>12} {'eval':>6} {'peak GiB':>8}")
    for c in cells:
        print(f"{c['reward']:>10} {c['onednn_cache']!s:>6} {c['pad_to_multiple_of']:>8} {c['train_s']:>8} "
              f"{c['tok_s']:>7} {c['loss_first']:>6.3f}->{c['loss_last']:<6.3f} {c['peak_fit_first_half_gib']!s:>12} "
              f"{c['peak_fit_second_half_gib']!s:>12} {c.get('peak_evaluate_reward_model_gib')!s:>6} "
              f"{c['peak_rss_gib']:>8}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    report = {"kind": "implicit_step", "loop_dir": args.loop_dir, "eval": args.eval, "cells": cells, "cpu": _cpu(),
              "command": " ".join(sys.argv)}
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return 0


def _cpu() -> str:
    try:
        return next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
