"""Benchmark: what kind of errors lose the majority vote, and does the policy believe them?

The reward models here do not lift the weighted vote by the issue's +0.05 over the
majority (README, "Targets missed"). A weighted vote beats the majority only on
problems whose majority answer is wrong while some candidate is right, and there it
must score the majority's candidates below the right ones. This measures, on the
candidates an evaluate-reranking stage saved (`candidates.jsonl`, nothing sampled again),
with the exact oracle and one teacher-forced pass of the policy that sampled them:

- each wrong candidate's first wrong step (the oracle's): an arithmetic slip (its stated
  computation does not hold: `16 * 3 = 54`), a wrong choice (the computation holds but is
  not the problem's: the wrong quantities or operation), or a step with no computation;
- for every step that commits to a number (reward/corrupt.target_span: the number after
  its last `=`, else its last number), whether that number is the policy's own argmax
  continuation (every one of its tokens the most probable next token): on oracle-right
  steps, on first wrong steps (slips and wrong choices apart);
- on the problems where the majority is wrong and a candidate right: how many of the
  majority answer's candidates went wrong at a step the policy itself believes (argmax);
- the "recomputation" scorer this suggests, training-free: a step's value is
  exp(Σ over its number's tokens of log p(written) − log p(argmax)) (1 where the policy
  would have written the same number), a candidate's its weakest step; its candidate AUC
  and weighted vote, as bench/policy_confidence.py measures them. It was explored on the
  first 50 of the same 200 problems before this script was written: not a fresh test.

Rates come with 95 % bootstrap intervals over problems (a problem's steps together).

    .venv/bin/python bench/believed_errors.py --loop-dir runs/prm-flow \\
        --rerank-dir runs/prm-flow/artifacts/rerank-r3/<dir> --out bench/results/believed_errors.json
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import policy_confidence  # noqa: E402  (bench/ is on sys.path)
from prm_quickstart import latest  # noqa: E402

ARGMAX_TOLERANCE = 1e-6  # a log-prob gap this small is a tie with the argmax


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--loop-dir", default="runs/prm-flow", help="the finished run the rerank is from")
    p.add_argument("--rerank-dir", required=True, help="an evaluate-reranking output holding candidates.jsonl")
    p.add_argument("--policy", help="the policy that sampled them (default: the run's policy-r<rounds>)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--bootstrap", type=int, default=2000)
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "believed_errors.json"))
    return p.parse_args(argv)


def encode(tokenizer, prompt: str, steps: list[str]) -> tuple[list[int], list[list[int]]]:
    """The prompt and steps as the policy wrote them (one per line), and for each step
    the token indices of the number it commits to (empty when it has none)."""
    from searchlearn.reward.corrupt import target_span

    ids, spans = tokenizer(prompt)["input_ids"], []
    for step in steps:
        piece = tokenizer(step + "\n", add_special_tokens=False, return_offsets_mapping=True)
        span, base = target_span(step), len(ids)
        spans.append([base + k for k, (a, b) in enumerate(piece["offset_mapping"])
                      if span and a < span[1] and b > span[0]])
        ids = ids + piece["input_ids"]
    return ids, spans


def argmax_gaps(model, tokenizer, encoded, batch_size: int) -> list[list[float | None]]:
    """Per candidate, per step: Σ over its number's tokens of log p(written) − max log p
    (0 when the policy would write the same number; None for a step without one)."""
    def summarize(idx, ids, lp):
        gap = lp.gather(-1, ids[:, 1:, None])[..., 0] - lp[:, :-1].max(-1).values  # token t+1's, at column t
        return [[float(gap[row, [t - 1 for t in span]].sum()) if span else None for span in encoded[i][1]]
                for row, i in enumerate(idx)]

    return policy_confidence.teacher_forced(model, tokenizer, [ids for ids, _ in encoded], batch_size, summarize)


def first_wrong(c: dict) -> int | None:
    oracle = c.get("oracle") or []
    return oracle.index(0) if 0 in oracle else None


def error_kind(c: dict) -> str:
    """A wrong candidate's first wrong step, by what went wrong there."""
    from searchlearn.reward.oracle import arithmetic_holds

    k = first_wrong(c)
    if k is None:
        return "no_wrong_step" if c.get("oracle") else "no_oracle"
    return {False: "slip", True: "wrong_choice", None: "no_computation"}[arithmetic_holds(c["steps"][k])]


def believed(gap: float | None) -> bool:
    return gap is not None and gap > -ARGMAX_TOLERANCE


def rate(per_problem: list[tuple[int, int]], draws: int, seed: int = 0) -> dict:
    """hits / total pooled over problems, with a 95 % bootstrap interval resampling
    problems (quality.pooled_ratio, as the candidate AUC's)."""
    from searchlearn.reward.quality import pooled_ratio

    hits = sum(h for h, _ in per_problem)
    value, lo, hi, total = pooled_ratio(per_problem, draws, seed)
    if not total:
        return {"rate": None, "ci95": None, "hits": hits, "of": 0}
    return {"rate": round(value, 4), "ci95": [round(lo, 4), round(hi, 4)], "hits": hits, "of": int(total)}


def step_rates(rows: list[dict], draws: int) -> dict:
    """How often a step's number is the policy's argmax: oracle-right steps, and first
    wrong steps by kind."""
    groups = {"right_steps": [], "first_wrong_slip": [], "first_wrong_choice": []}
    for r in rows:
        counts = {g: [0, 0] for g in groups}
        for c in r["candidates"]:
            oracle, k = c.get("oracle") or [], first_wrong(c)
            for j, gap in enumerate(c["gap"]):
                if gap is None or j >= len(oracle):
                    continue
                group = "right_steps" if oracle[j] == 1 else None
                if j == k:
                    group = {"slip": "first_wrong_slip", "wrong_choice": "first_wrong_choice"}.get(error_kind(c))
                if group:
                    counts[group][0] += believed(gap)
                    counts[group][1] += 1
        for g in groups:
            groups[g].append(tuple(counts[g]))
    return {g: rate(v, draws) for g, v in groups.items()}


def majority_lost(rows: list[dict], draws: int) -> dict:
    """The problems a weighted vote could win: majority answer wrong, some candidate
    right. Their majority candidates' first errors, and whether the policy believes them."""
    per, kinds, problems = [], Counter(), 0
    for r in rows:
        votes = Counter(c["answer"] for c in r["candidates"] if c["answer"] is not None)
        if not votes:
            continue
        top = votes.most_common(1)[0][0]
        if any(c["correct"] for c in r["candidates"] if c["answer"] == top) or not any(
                c["correct"] for c in r["candidates"]):
            continue
        problems += 1
        held = [c for c in r["candidates"] if c["answer"] == top and first_wrong(c) is not None]
        kinds.update(error_kind(c) for c in held)
        per.append((sum(believed(c["gap"][first_wrong(c)]) for c in held), len(held)))
    return {"problems": problems, "first_error_kinds": dict(kinds),
            "first_error_believed": rate(per, draws)}


def main(argv=None) -> int:
    args = parse_args(argv)
    loop, start = Path(args.loop_dir).resolve(), time.perf_counter()
    rows = policy_confidence.merged_candidates([Path(args.rerank_dir)])
    questions = policy_confidence.known_questions(loop, {r["id"] for r in rows})  # fails before the model loads
    import torch
    from transformers import AutoModelForCausalLM

    from searchlearn.formatting import build_prompt
    from searchlearn.learn.scaffold import configure_cpu, load_tokenizer

    configure_cpu()
    policy = args.policy or str(Path(latest(loop, f"policy-r{args.rounds}")["path"]) / "model")
    tokenizer = load_tokenizer(policy)
    model = AutoModelForCausalLM.from_pretrained(policy, dtype=torch.float32).eval()
    flat = [c for r in rows for c in r["candidates"]]
    encoded = [encode(tokenizer, build_prompt(questions[r["id"]]), c["steps"]) for r in rows for c in r["candidates"]]
    policy_confidence.log(f"teacher-forcing {len(flat)} candidates of {len(rows)} problems with {policy} ...")
    for c, gaps in zip(flat, argmax_gaps(model, tokenizer, encoded, args.batch_size)):
        c["gap"] = gaps
    wrong = [c for c in flat if not c["correct"]]
    recompute = policy_confidence.measures(
        rows, lambda c: [1.0 if g is None else math.exp(g) for g in c["gap"]], "min", [4, 8, 16], args.bootstrap)
    report = {"rerank_dir": str(Path(args.rerank_dir).resolve()), "policy": policy, "problems": len(rows),
              "candidates": len(flat), "wrong_candidates": len(wrong),
              "first_error_kinds": dict(Counter(error_kind(c) for c in wrong)),
              "argmax_rate": step_rates(rows, args.bootstrap), "majority_lost": majority_lost(rows, args.bootstrap),
              "recomputation_scorer": recompute,
              "seconds": round(time.perf_counter() - start, 1),
              "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print_report(report)
    return 0


def print_report(report: dict) -> None:
    def fmt(d):
        return f"{d['rate']:.3f} [{d['ci95'][0]:.3f}, {d['ci95'][1]:.3f}] ({d['hits']}/{d['of']})"

    print(f"\n{report['problems']} problems, {report['candidates']} candidates, {report['wrong_candidates']} wrong")
    print("wrong candidates' first wrong step:", report["first_error_kinds"])
    for name, d in report["argmax_rate"].items():
        print(f"the step's number is the policy's argmax, {name}: {fmt(d)}")
    lost = report["majority_lost"]
    print(f"majority wrong, some candidate right: {lost['problems']} problems; their majority candidates' first "
          f"errors {lost['first_error_kinds']}, believed by the policy (argmax): {fmt(lost['first_error_believed'])}")
    rec, bon = report["recomputation_scorer"], report["recomputation_scorer"]["bon"]["n16"]
    d = bon["weighted"]["minus_majority"]
    print(f"recomputation scorer: candidate AUC {rec['candidate_auc']['auc']:.3f} {rec['candidate_auc']['ci95']}; "
          f"weighted BoN16 {bon['weighted']['acc']:.3f} - majority {bon['majority']['acc']:.3f} = "
          f"{d['diff']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]")


if __name__ == "__main__":
    sys.exit(main())
