"""Benchmark: the vLLM backend vs the HF backend on one sampling job.

Both run through the project's own generators (`make_generator`), on SmolLM2-135M-
Instruct converted from the packaged GGUF to a plain HF directory by
`searchlearn.models.init.materialize_base` (cached in --work-dir), with the project's
prompt format on arithmetic word problems. Each backend runs in its own child process,
so peak RSS is that backend's alone and neither inherits the other's threads or
memory.

    .venv/bin/python bench/generation.py                     # 64 prompts x n=8 x 64 tokens
    .venv/bin/python bench/generation.py --prompts 8 --n 2   # quick smoke run

Reported per backend: start (imports + engine or model load), warm-up (one small
call: vLLM's first batch is slow), job time, generated tokens, tokens/s excluding and
including start + warm-up, peak RSS of the process and of its children.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

RESULT_TAG = "BENCH_RESULT "


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", help="a HF checkpoint dir; default: SmolLM2 converted into --work-dir")
    p.add_argument("--work-dir", default="/tmp/searchlearn-bench")
    p.add_argument("--backends", default="vllm,hf", help="comma-separated, run in this order")
    p.add_argument("--prompts", type=int, default=64)
    p.add_argument("--n", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--hf-batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--worker", help=argparse.SUPPRESS)  # internal: run one backend and print JSON
    return p.parse_args(argv)


def ensure_model(args) -> str:
    if args.model_dir:
        return args.model_dir
    from searchlearn.artifacts import is_complete_dir
    from searchlearn.config.schema import PolicyConfig
    from searchlearn.models.init import materialize_base
    from dataclasses import asdict

    out = Path(args.work_dir) / "smollm2-135m-instruct"
    if not is_complete_dir(out):
        print(f"converting SmolLM2 GGUF -> {out} ...", flush=True)
        materialize_base({**asdict(PolicyConfig()), "source": "smollm2_gguf"}, str(out))
    return str(out)


def bench_prompts(count: int, seed: int) -> list[str]:
    from searchlearn.formatting import build_prompt
    from searchlearn.problems.arithmetic import make_splits

    train, _ = make_splits(train_size=count, test_size=0, min_steps=1, max_steps=3, max_value=100, seed=seed)
    return [build_prompt(p.question) for p in train]


def run_worker(args) -> dict:
    """One backend, timed in phases. Runs in a fresh child process."""
    t0 = time.perf_counter()
    from searchlearn.generation import make_generator
    from searchlearn.generation.base import SamplingParams

    prompts = bench_prompts(args.prompts, args.seed)
    gen_cfg = {"backend": args.worker, "hf_batch_size": args.hf_batch_size}
    load_before = os.getloadavg()[0]
    generator = make_generator(args.model_dir, gen_cfg, seed=args.seed)
    t_start = time.perf_counter() - t0

    t = time.perf_counter()
    generator.generate(prompts[:4], SamplingParams(n=1, temperature=args.temperature, max_new_tokens=8))
    t_warm = time.perf_counter() - t

    params = SamplingParams(n=args.n, temperature=args.temperature, max_new_tokens=args.max_new_tokens)
    t = time.perf_counter()
    out = generator.generate(prompts, params)
    t_job = time.perf_counter() - t
    tokens = sum(c.num_tokens for cs in out for c in cs)
    generator.close()
    return {
        "backend": args.worker, "completions": sum(len(cs) for cs in out), "tokens": tokens,
        "start_s": t_start, "warmup_s": t_warm, "job_s": t_job,
        "tok_s_steady": tokens / t_job, "tok_s_total": tokens / (t_start + t_warm + t_job),
        "peak_rss_self_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_rss_children_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "loadavg_1m_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def spawn_worker(backend: str, model_dir: str, args) -> dict:
    cmd = [sys.executable, __file__, "--worker", backend, "--model-dir", model_dir,
           "--prompts", str(args.prompts), "--n", str(args.n), "--max-new-tokens", str(args.max_new_tokens),
           "--temperature", str(args.temperature), "--hf-batch-size", str(args.hf_batch_size),
           "--seed", str(args.seed)]
    print(f"\n== {backend}: {' '.join(cmd)}", flush=True)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)  # stderr (logs, bars) passes through
    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT_TAG)]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"{backend} worker failed (exit {proc.returncode})")
    return json.loads(lines[-1][len(RESULT_TAG):])


def report(results: list[dict], args) -> None:
    print(f"\njob: {args.prompts} prompts x n={args.n} x up to {args.max_new_tokens} new tokens, "
          f"temperature {args.temperature}; {os.cpu_count()} CPUs")
    cols = ["backend", "tokens", "start_s", "warmup_s", "job_s", "tok_s_steady", "tok_s_total",
            "peak_rss_self_mb", "peak_rss_children_mb", "loadavg_1m_before_after"]
    print(" | ".join(cols))
    for r in results:
        print(" | ".join(f"{r[c]:.1f}" if isinstance(r[c], float) else str(r[c]) for c in cols))
    by = {r["backend"]: r for r in results}
    if "vllm" in by and "hf" in by:
        for key in ("tok_s_steady", "tok_s_total"):
            print(f"vllm/hf {key}: {by['vllm'][key] / by['hf'][key]:.2f}x")
        wall = {b: r["start_s"] + r["warmup_s"] + r["job_s"] for b, r in by.items()}
        print(f"wall time incl. start: vllm {wall['vllm']:.1f} s, hf {wall['hf']:.1f} s")
    # ru_maxrss of children is the largest child's; here the children are helper
    # commands (lscpu, uname) forked from the big process before exec, so that number
    # echoes the parent's RSS at fork time rather than extra memory.
    print("peak RSS: trust self; the children column is fork-before-exec of helper commands")


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.worker:
        print(RESULT_TAG + json.dumps(run_worker(args)), flush=True)
        return
    model_dir = ensure_model(args)
    results = [spawn_worker(b.strip(), model_dir, args) for b in args.backends.split(",") if b.strip()]
    report(results, args)


if __name__ == "__main__":
    main()
