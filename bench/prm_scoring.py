"""Benchmark: reward-model scoring throughput against a plain forward pass, in one run.

On SmolLM2-135M-Instruct (converted from the packaged GGUF like bench/train_throughput.py)
and quickstart-shaped candidates (arithmetic problems' worked solutions, several per
question, as reranking scores them), each precision (bf16, fp32) times:

- prm:       PRMScorer.score end to end (tokenize, find step ends, length-sorted
             batches, forward, sigmoid at step ends): what search and reranking pay.
             A verifier scores through the same code;
- backbone:  the reference, the same model's transformer forward alone on the same
             token batches (same order, same padding), nothing else: the ceiling;
- causal_lm: a plain HF causal-LM forward (logits over the vocabulary at every
             position) on the same batches: what scoring with an LM head would cost;
- implicit:  ImplicitPRMScorer.score: two backbones (πθ and πref) plus the LM head
             at solution tokens.

Figures are scored (non-padding) tokens per second, best of --repeats runs, the cells
of one repeat interleaved so drift on a shared machine spreads over all of them.
The score head is untrained: its weights do not change the cost.

    .venv/bin/python bench/prm_scoring.py                        # bf16 and fp32, ~10 min on 1 core
    taskset -c 1 .venv/bin/python bench/prm_scoring.py --precisions bf16 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMPLS = ("prm", "backbone", "causal_lm", "implicit")
TARGET_TOK_S = 1500  # issue 12, item 4: on this project's 2-core machine


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--precisions", nargs="+", default=["bf16", "fp32"], choices=["bf16", "fp32"])
    p.add_argument("--impls", nargs="+", default=list(IMPLS), choices=IMPLS)
    p.add_argument("--problems", type=int, default=16, help="questions; each gets --per-problem candidates")
    p.add_argument("--per-problem", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=32, help="PRMScorer's default")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--model-dir", help="a HF checkpoint dir; default: SmolLM2 converted into --work-dir")
    p.add_argument("--work-dir", default="/tmp/searchlearn-bench")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "prm_scoring.json"))
    return p.parse_args(argv)


def log(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


def candidates(args) -> tuple[list[str], list[list[str]]]:
    """Quickstart's problem distribution: each question's worked solution, and variants
    of it with one step's result off by k (so candidates differ, as samples do)."""
    from omegaconf import OmegaConf

    from searchlearn.config import load_config
    from searchlearn.formatting import split_steps
    from searchlearn.problems.arithmetic import make_splits

    p = OmegaConf.to_container(load_config("quickstart").problems, resolve=True)
    train, _ = make_splits(args.problems, 0, p["min_steps"], p["max_steps"], p["max_value"], seed=1)
    questions, steps = [], []
    for problem in train:
        good = split_steps(problem.solution)
        for k in range(args.per_problem):
            variant = list(good)
            if k:  # a slip in one step: "... = 79." -> "... = 79+k."
                j = k % max(1, len(good) - 1)
                head, _, tail = variant[j].rpartition("= ")
                variant[j] = f"{head}= {tail.rstrip('.')}{k}." if head else variant[j]
            questions.append(problem.question)
            steps.append(variant)
    return questions, steps


def batches(tokenizer, questions, steps, batch_size: int):
    """The token batches PRMScorer forms: length-sorted, right-padded."""
    from searchlearn.reward.prm import encode_solutions, pad_batch, pad_token_id

    encoded = encode_solutions(tokenizer, questions, steps, 2048)
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]))
    out = [pad_batch([encoded[i][0] for i in order[b: b + batch_size]], pad_token_id(tokenizer))
           for b in range(0, len(order), batch_size)]
    return out, sum(len(ids) for ids, _ in encoded)


class Cells:
    """Each implementation of one precision, set up once, timed many times."""

    def __init__(self, model_dir: str, precision: str, impls, questions, steps, batch_size: int):
        import torch
        from transformers import AutoModelForTokenClassification, AutoTokenizer

        from searchlearn.reward.implicit import ImplicitPRMScorer, load_for_scoring
        from searchlearn.reward.prm import PRMScorer

        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        self.questions, self.steps = questions, steps
        tok = AutoTokenizer.from_pretrained(model_dir)
        self.batches, self.tokens = batches(tok, questions, steps, batch_size)
        self.run = {}
        if {"prm", "backbone"} & set(impls):
            prm_model = AutoModelForTokenClassification.from_pretrained(model_dir, num_labels=1, dtype=dtype).eval()
            scorer = PRMScorer.from_model(prm_model, tok, {"kind": "prm"}, batch_size=batch_size)
            self.run["prm"] = lambda: scorer.score(questions, steps)
            self.run["backbone"] = lambda: self._forward(prm_model.model)
        if {"causal_lm", "implicit"} & set(impls):
            # One copy serves all three roles: the compact head only changes fused calls,
            # and πθ = πref costs the same two forwards as two different models.
            lm = load_for_scoring(model_dir, dtype)
            self.run["causal_lm"] = lambda: self._forward(lm)
            implicit = ImplicitPRMScorer.from_models(lm, lm, tok, {"kind": "implicit", "beta": 0.05},
                                                     batch_size=batch_size)
            self.run["implicit"] = lambda: implicit.score(questions, steps)
        self.run = {k: v for k, v in self.run.items() if k in impls}

    def _forward(self, model) -> None:
        import torch

        with torch.inference_mode():
            for ids, mask in self.batches:
                model(input_ids=ids, attention_mask=mask)

    def time(self, impl: str) -> float:
        start = time.perf_counter()
        self.run[impl]()
        return time.perf_counter() - start


def machine() -> dict:
    import torch

    from searchlearn.learn.scaffold import cpu_has_bf16

    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return {"cpu": model, "cores_visible": os.cpu_count(), "affinity": sorted(os.sched_getaffinity(0)),
            "torch_threads": torch.get_num_threads(), "cpu_bf16": cpu_has_bf16(), "torch": torch.__version__,
            "load_avg_at_start": os.getloadavg()}


def main(argv=None) -> int:
    from searchlearn.learn.scaffold import configure_cpu

    sys.path.insert(0, str(ROOT / "bench"))
    from train_throughput import ensure_model

    args = parse_args(argv)
    configure_cpu()  # threads = the cores this process may use (taskset narrows it), heap kept
    model_dir = ensure_model(args)
    questions, steps = candidates(args)
    report = {"model": model_dir, "candidates": len(questions), "batch_size": args.batch_size,
              "repeats": args.repeats, "machine": machine(), "target_tok_s": TARGET_TOK_S, "cells": []}
    for precision in args.precisions:
        log(f"{precision}: loading ...")
        cells = Cells(model_dir, precision, args.impls, questions, steps, args.batch_size)
        for impl in cells.run:  # warm-up: first-touch memory, kernel selection
            cells.time(impl)
        times = {impl: [] for impl in cells.run}
        for r in range(args.repeats):
            for impl in cells.run:
                times[impl].append(cells.time(impl))
                log(f"  {precision} {impl:<9} repeat {r + 1}: {cells.tokens / times[impl][-1]:7.0f} tok/s")
        for impl, ts in times.items():
            report["cells"].append({"precision": precision, "impl": impl, "tokens": cells.tokens,
                                    "best_s": round(min(ts), 3), "median_s": round(sorted(ts)[len(ts) // 2], 3),
                                    "tok_s": round(cells.tokens / min(ts), 1)})
        del cells
    report["load_avg_at_end"] = os.getloadavg()
    report["summary"] = summary(report)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)
    return 0


def summary(report: dict) -> dict:
    """PRM scoring speed against the target and against its ceiling, per precision."""
    by = {(c["precision"], c["impl"]): c["tok_s"] for c in report["cells"]}
    out = {}
    for precision in {c["precision"] for c in report["cells"]}:
        prm, ceiling = by.get((precision, "prm")), by.get((precision, "backbone"))
        if prm and ceiling:
            out[precision] = {"prm_tok_s": prm, "backbone_tok_s": ceiling, "prm_vs_backbone": round(prm / ceiling, 3),
                              "meets_target": prm >= min(TARGET_TOK_S, ceiling)}
    return out


def print_table(report: dict) -> None:
    m = report["machine"]
    print(f"{m['cpu']}, torch threads {m['torch_threads']} (affinity {m['affinity']}), "
          f"{report['candidates']} candidates, batch {report['batch_size']}, best of {report['repeats']}")
    print(f"{'precision':<10}{'impl':<11}{'tokens':>8}{'best s':>9}{'tok/s':>9}")
    for c in report["cells"]:
        print(f"{c['precision']:<10}{c['impl']:<11}{c['tokens']:>8}{c['best_s']:>9.2f}{c['tok_s']:>9.0f}")
    for precision, s in sorted(report["summary"].items()):
        print(f"{precision}: PRM {s['prm_tok_s']:.0f} tok/s = {s['prm_vs_backbone']:.0%} of the backbone's "
              f"{s['backbone_tok_s']:.0f}; target min({TARGET_TOK_S}, ceiling) "
              f"{'met' if s['meets_target'] else 'NOT met'}")


if __name__ == "__main__":
    sys.exit(main())
