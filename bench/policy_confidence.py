"""Benchmark: do the reward models tell a problem's right candidates from its wrong ones?
And does the policy's own confidence, which needs no training, do better?

Reads the candidates an evaluate-reranking stage saved (`candidates.jsonl`: every
sampled solution of every held-out problem, its answer, correctness, steps, the exact
oracle's verdict per step and each reward model's step scores), so nothing is sampled
again. Adds a training-free scorer: the policy that sampled them, step value = the
geometric mean of the step's token probabilities, exp(mean log p) (the self-certainty
behind confidence-weighted voting), and a second from the same pass: the probability of
the step's least likely token (`weakest_token`: does one unlikely token, a sampled slip
such as `16 * 3 = 54`, mark a wrong step better than the step's mean?). Then, for every
scorer, on the same candidates:

- candidate AUC: a problem's right answers ranked above its wrong ones, pairs formed
  inside a problem only (quality.stratified_auc, 95 % bootstrap over problems). Best-of-N
  needs this; a pooled step AUC also rewards knowing which problems are hard and that
  late steps go wrong more often, which picks no candidate;
- step AUC against the oracle, pooled and matched (inside a problem and step position);
- best-of-N at each N: weighted vote and best-scored, minus majority, with paired
  bootstrap intervals over problems (the first N candidates of each pool, as the stage).

A content-blind scorer is measured beside them (`position_only`: step k valued 1/(k+1),
so it knows only how far into a solution a step is): what a pooled step AUC gives for
nothing.

The confidence scorers' aggregation is fixed in advance, the weakest step (`min`, as the
reward models' headline selector): the other aggregations are printed too, but all of
them are measured on the same 200 held-out problems, so none was chosen on them.

    .venv/bin/python bench/policy_confidence.py --loop-dir runs/bench-arms/loop \\
        --rerank-dir runs/bench-arms/loop/artifacts/rerank-r3/<dir> [<dir> ...]

`--skip-policy` compares only the reward models the reranks scored (no policy pass, no
confidence scorer; seconds instead of minutes), e.g. a new model `--against` the rest.

Writes bench/results/policy_confidence.json.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from prm_quickstart import bootstrap_diff, interval, latest  # noqa: E402  (bench/ is on sys.path)

AGGREGATIONS = ("min", "mean", "last")
HEADLINE = "min"  # fixed before measuring: the reward models' headline selector


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--loop-dir", default="runs/bench-arms/loop", help="the finished quickstart run the rerank is from")
    p.add_argument("--rerank-dir", required=True, nargs="+", metavar="DIR",
                   help="evaluate-reranking outputs holding candidates.jsonl; several (one reward model per process, "
                        "as memory needs) must hold the same pools, whose scores are then put side by side")
    p.add_argument("--policy", help="the policy's model dir (default: the loop's policy-r<last>, the flow's)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--ns", type=int, nargs="+", default=[4, 8, 16])
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--bootstrap", type=int, default=2000)
    p.add_argument("--against", nargs="+", default=[], metavar="SCORER",
                   help="also the candidate AUC and the pooled step AUC of each of these scorers (names as in the "
                        "table) minus every other reward model's, paired over problems (e.g. a new model against "
                        "the earlier ones)")
    p.add_argument("--skip-policy", action="store_true",
                   help="compare only the reward models the reranks scored: no policy pass (minutes) and no "
                        "confidence scorer")
    p.add_argument("--vote-temperatures", type=float, nargs="+", default=[], metavar="T",
                   help="also each scorer's weighted vote at the largest N with every candidate weighted by "
                        "exp(logit(s)/T) instead of s (T -> 0: the best-scored; large T: the majority). Measured "
                        "on the same held-out pool, so a scan's best T is an upper bound, not a tuned result")
    p.add_argument("--step-check", default="none", choices=["none", "calculator"],
                   help="also the step check alone and every reward model checked by it (prm.step_check), "
                        "from the saved scores: the same pool, so paired with the unchecked model (--against)")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "policy_confidence.json"))
    return p.parse_args(argv)


def log(*parts) -> None:
    print(time.strftime("%H:%M:%S"), *parts, file=sys.stderr, flush=True)


def merged_candidates(dirs: list[Path]) -> list[dict]:
    """The first output's candidates with every output's step scores. The outputs must
    have sampled the same pools (same policy, problems and seed): checked candidate by
    candidate, since scores of different samples cannot be compared."""
    def read(d: Path) -> list[dict]:
        return [json.loads(line) for line in (d / "candidates.jsonl").read_text().splitlines()]

    rows = read(dirs[0])
    for d in dirs[1:]:
        other = read(d)
        same = len(other) == len(rows) and all(
            a["id"] == b["id"] and [c["steps"] for c in a["candidates"]] == [c["steps"] for c in b["candidates"]]
            for a, b in zip(rows, other))
        if not same:
            raise SystemExit(f"{d}: its candidates differ from {dirs[0]}'s (another policy, problem set or seed)")
        for a, b in zip(rows, other):
            for ca, cb in zip(a["candidates"], b["candidates"]):  # a name taken already: tag it with the output
                ca["scores"].update({f"{k}@{d.name}" if k in ca["scores"] else k: v for k, v in cb["scores"].items()})
    return rows


def encode(tokenizer, prompt: str, steps: list[str]) -> tuple[list[int], int, list[int]]:
    """The prompt and the steps as the policy wrote them (one per line), with the
    token index where the solution starts and each step's end (exclusive)."""
    ids = tokenizer(prompt)["input_ids"]
    start, ends = len(ids), []
    for step in steps:
        ids = ids + tokenizer(step + "\n", add_special_tokens=False)["input_ids"]
        ends.append(len(ids))
    return ids, start, ends


def teacher_forced(model, tokenizer, seqs: list[list[int]], batch_size: int, summarize) -> list:
    """One forward pass of the policy over token sequences, batched longest first, bf16
    on CPU: `summarize(indices, ids, log_probs)` turns a batch (the sequences' indices,
    the padded (B, T) ids and their (B, T, V) next-token log-probs, fp32) into one value
    per row; the values come back in the order of `seqs`."""
    import torch

    from searchlearn.reward.prm import length_batches, pad_batch, pad_token_id

    out: list = [None] * len(seqs)
    pad = pad_token_id(tokenizer)
    batches = length_batches([len(ids) for ids in seqs], batch_size)
    for b, idx in enumerate(batches):
        ids, mask = pad_batch([seqs[i] for i in idx], pad)
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(input_ids=ids, attention_mask=mask).logits
        for i, value in zip(idx, summarize(idx, ids, torch.log_softmax(logits.float(), -1))):
            out[i] = value
        if b % 20 == 0:
            log(f"batch {b + 1}/{len(batches)}")
    return out


def step_log_probs(model, tokenizer, encoded, batch_size: int) -> list[list[tuple[float, int, float]]]:
    """Per candidate, per step: (sum of its tokens' log-probs under the policy, its
    token count, its least likely token's log-prob)."""
    def summarize(idx, ids, lp):
        token_lp = lp[:, :-1].gather(-1, ids[:, 1:, None])[..., 0]
        rows = []
        for row, i in enumerate(idx):
            _, start, ends = encoded[i]
            bounds = [start, *ends]
            spans = [token_lp[row, a - 1:e - 1] for a, e in zip(bounds, bounds[1:])]
            rows.append([(float(t.sum()), len(t), float(t.min()) if len(t) else 0.0) for t in spans])
        return rows

    return teacher_forced(model, tokenizer, [ids for ids, _, _ in encoded], batch_size, summarize)


def confidence_values(step_lp: list[tuple[float, int, float]]) -> list[float]:
    """exp(mean token log-prob) per step (1.0 for a step without tokens)."""
    return [math.exp(s / n) if n else 1.0 for s, n, _ in step_lp]


def weakest_token_values(step_lp: list[tuple[float, int, float]]) -> list[float]:
    """The probability of each step's least likely token (1.0 for a step without
    tokens): one sampled slip (`16 * 3 = 54`) is one unlikely token among a step's
    dozen, which the step's mean dilutes."""
    return [math.exp(m) if n else 1.0 for _, n, m in step_lp]


def measures(rows: list[dict], values, how: str, ns, draws: int, temperatures=()) -> dict:
    """Candidate AUC, matched and pooled step AUC vs the oracle, and best-of-N vs majority
    for one scorer: `values(candidate) -> step values`, aggregated by `how`."""
    from searchlearn.evaluation import _candidate_auc, _oracle_auc
    from searchlearn.search.selection import select_best, select_majority, select_weighted

    # the rerank stage's own measures, on the saved candidates
    cands = [r["candidates"] for r in rows]
    scores = [[values(c) for c in cs] for cs in cands]
    pools = scored_pools(rows, scores, how)
    cand, steps = _candidate_auc(pools, scores, how, ""), _oracle_auc(cands, scores, "")
    out = {"candidate_auc": _auc(cand, "candidate_auc"),
           "step_auc_oracle": {"auc": steps.get("step_auc_oracle"),
                               "ci95": [steps.get("step_auc_oracle_lo"), steps.get("step_auc_oracle_hi")]},
           "step_auc_oracle_matched": _auc(steps, "step_auc_oracle_matched"), "bon": {}}
    for n in ns:
        outcome = {m: vote(pools, n, select) for m, select in
                   (("majority", select_majority), ("weighted", select_weighted), ("best", select_best))}
        k = len(rows)
        out["bon"][f"n{n}"] = {
            m: {"acc": sum(v) / k, "ci95": interval(sum(v) / k, k),
                **({} if m == "majority" else {"minus_majority": bootstrap_diff(
                    [a - b for a, b in zip(v, outcome["majority"])], draws)})}
            for m, v in outcome.items()}
    out["tempered_vote"] = {f"T{t:g}": tempered_vote(pools, max(ns), t) for t in temperatures}
    return out


def scored_pools(rows: list[dict], scores, how: str) -> list[list]:
    """Each problem's candidates as search Candidates, scored by their step values
    (`scores`, per problem per candidate) aggregated by `how`."""
    from searchlearn.reward.base import aggregate
    from searchlearn.search.base import Candidate

    return [[Candidate("", c["tokens"], c["answer"], c["correct"], aggregate(v, how))
             for c, v in zip(r["candidates"], vs)] for r, vs in zip(rows, scores)]


def vote(pools: list[list], n: int, select) -> list[int]:
    """Per problem, 1 if `select` picks a right candidate among the pool's first n
    (a pool at size n, as the rerank stage cuts it)."""
    return [int(bool(pool[select(pool)].correct)) for pool in (p[:n] for p in pools)]


def weighted_outcomes(rows: list[dict], values, how: str, n: int) -> list[int]:
    """Per problem, 1 if the weighted vote over its first n candidates is right."""
    from searchlearn.search.selection import select_weighted

    return vote(scored_pools(rows, [[values(c) for c in r["candidates"]] for r in rows], how), n, select_weighted)


def tempered_vote(pools, n: int, temperature: float) -> float:
    """Accuracy of the weighted vote over each pool's first n candidates, each weighted
    by exp(logit(score)/temperature), the scores clipped to [1e-6, 1 - 1e-6]; each
    pool's weights divided by its largest (the vote is unchanged) so none overflows."""
    from dataclasses import replace

    from searchlearn.search.selection import select_weighted

    def logit(c):
        s = min(max(c.score, 1e-6), 1 - 1e-6)
        return math.log(s / (1 - s))

    def tempered(pool):
        top = max(logit(c) for c in pool)
        return [replace(c, score=math.exp((logit(c) - top) / temperature)) for c in pool]

    return sum(vote([tempered(p[:n]) for p in pools], n, select_weighted)) / len(pools)


def scorers(rows: list[dict], with_policy: bool = True, step_check: str = "none") -> dict:
    """name -> (a candidate's step values, their aggregation): the content-blind
    position scorer, the policy's confidence by each aggregation (unless without the
    policy), and every reward model the rerank scored (a process model by its weakest
    step). With a `step_check` (reward/checks.py), also the check alone (a step 1 unless
    it fails, 0 from there on: `<check>_only`) and every reward model checked by it
    (`<name>+<check>`), computed from the saved scores exactly as the stages' checked
    scorer computes them."""
    out = {"position_only": (lambda c: [1 / (k + 1) for k in range(len(c["steps"]))], "min")}
    if with_policy:
        out.update({f"confidence_{how}": (lambda c: c["confidence"], how) for how in AGGREGATIONS})
        out.update({f"weakest_token_{how}": (lambda c: c["weakest_token"], how) for how in AGGREGATIONS})
    for name in rows[0]["candidates"][0]["scores"]:
        selector = name.split("@")[0]
        how = selector.rsplit("_", 1)[1] if selector.endswith(("_min", "_last")) else "last"
        out[name] = (lambda c, k=name: c["scores"][k], how)
    if step_check != "none":
        from searchlearn.reward.checks import STEP_CHECKS, checked

        fails = STEP_CHECKS[step_check]
        models = [name for name in out if name in rows[0]["candidates"][0]["scores"]]
        out[f"{step_check}_only"] = (lambda c: checked([1.0] * len(c["steps"]), c["steps"], fails), "min")
        for name in models:
            values, how = out[name]
            out[f"{name}+{step_check}"] = (lambda c, v=values: checked(v(c), c["steps"], fails), how)
    return out


def paired_candidate_auc_difference(rows: list[dict], a: tuple, b: tuple, draws: int, seed: int = 0) -> dict:
    """Candidate AUC of scorer a minus scorer b (each as `scorers` gives it) over the
    same within-problem pairs, with a 95 % bootstrap over problems that resamples both
    alike."""
    import numpy as np

    from searchlearn.reward.base import aggregate
    from searchlearn.reward.quality import concordance, group_weights

    def ranked(scorer, cands):
        values, how = scorer
        return [[(aggregate(values(c), how), bool(c["correct"])) for c in cands]]

    per = []
    for r in rows:
        cands = [c for c in r["candidates"] if c["answer"] is not None]
        won_a, pairs = concordance(ranked(a, cands))
        won_b, _ = concordance(ranked(b, cands))
        per.append((won_a, won_b, pairs))
    per, diffs = np.array(per, dtype=float), []
    for weights in group_weights([1] * len(per), draws, seed):  # problems resampled whole, both scorers alike
        wa, wb, n = weights @ per
        diffs.append((wa - wb) / n if n else float("nan"))
    wa, wb, n = per.sum(axis=0)
    lo, hi = np.nanquantile(diffs, [0.025, 0.975])
    return {"diff": round(float((wa - wb) / n), 4), "ci95": [round(float(lo), 4), round(float(hi), 4)]}


def paired_step_auc_difference(rows: list[dict], a: tuple, b: tuple) -> dict:
    """Pooled step AUC against the oracle of scorer a minus scorer b, on the steps both
    scored, with the rerank stage's paired 95 % bootstrap over problems
    (evaluation._oracle_auc_differences): their separate intervals overlap however
    the two compare, since they are measured on the same steps."""
    from searchlearn.evaluation import _oracle_auc_differences

    cands = [r["candidates"] for r in rows]
    found = _oracle_auc_differences(cands, {name: [[values(c) for c in cs] for cs in cands]
                                            for name, (values, _) in (("b", b), ("a", a))})
    key = "a.step_auc_oracle_minus_b"
    return {"diff": round(found[key], 4), "ci95": [round(found[f"{key}_lo"], 4), round(found[f"{key}_hi"], 4)]}


def _auc(found: dict, key: str) -> dict:
    """evaluation's `<key>`, `_lo`, `_hi`, `_pairs` metrics as this report's {auc, ci95, pairs}."""
    return {"auc": found.get(key), "ci95": [found.get(f"{key}_lo"), found.get(f"{key}_hi")],
            "pairs": found.get(f"{key}_pairs")}


def known_questions(loop: Path, ids: set[str]) -> dict[str, str]:
    """id -> question for the reranked problem `ids`, looked up in the run's test split
    and every eval set prepared in it (a fresh held-out set of bench/prm_quickstart.py
    --test-seed among them). An id found with two different questions, or not found,
    is an error; sets that share ids with other questions but hold none of `ids` are
    no concern."""
    from searchlearn.stages.data import test_problems

    dirs = [Path(latest(loop, "problems")["path"])]
    dirs += sorted(d for d in (loop / "artifacts" / "eval-problems").glob("*") if (d / "_COMPLETE").exists())
    questions: dict[str, str] = {}
    for d in dirs:
        for p in test_problems(d):
            if p.id in ids and questions.setdefault(p.id, p.question) != p.question:
                raise SystemExit(f"problem id {p.id} names two questions (in {d}); cannot tell which was reranked")
    missing = sorted(ids - set(questions))
    if missing:
        raise SystemExit(f"{len(missing)} reranked problems (e.g. {missing[0]}) are in no problem set of {loop}")
    return questions


def main(argv=None) -> int:
    args = parse_args(argv)
    loop, start = Path(args.loop_dir).resolve(), time.perf_counter()
    rows = merged_candidates([Path(d) for d in args.rerank_dir])
    table = scorers(rows, with_policy=not args.skip_policy, step_check=args.step_check)
    unknown = sorted(set(args.against) - set(table))  # names need no scores yet: fails before any model loads
    if unknown:
        raise SystemExit(f"--against {unknown}: not among the scorers {sorted(table)}")
    flat = [c for r in rows for c in r["candidates"]]
    report = {"rerank_dirs": [str(Path(d).resolve()) for d in args.rerank_dir], "problems": len(rows),
              "candidates": len(flat), "headline_aggregation": HEADLINE, "scorers": {}}
    if not args.skip_policy:
        report.update(score_with_policy(args, loop, rows, flat))
    report["pass_at_n"] = {f"n{n}": sum(any(c["correct"] for c in r["candidates"][:n]) for r in rows) / len(rows)
                           for n in args.ns}
    for name, (values, how) in table.items():
        report["scorers"][name] = measures(rows, values, how, args.ns, args.bootstrap, args.vote_temperatures)
    # candidate AUC differences on the same pairs, resampling problems once for both scorers
    head, models = f"confidence_{HEADLINE}", [name for name in table if not name.startswith(("confidence_", "weakest_token_"))]
    pairs = [(a, name) for a in args.against for name in models if name not in (a, "position_only")]
    if not args.skip_policy:
        pairs = [(head, name) for name in models] + [(f"weakest_token_{HEADLINE}", name) for name in [head, *models]] + pairs
    report["candidate_auc_differences"] = {
        f"{a}_minus_{b}": paired_candidate_auc_difference(rows, table[a], table[b], args.bootstrap) for a, b in pairs}
    report["step_auc_oracle_differences"] = {  # --against's: the issue's pooled measure, paired
        f"{a}_minus_{b}": paired_step_auc_difference(rows, table[a], table[b]) for a, b in pairs if a in args.against}
    n, against = max(args.ns), [(a, b) for a, b in pairs if a in args.against]
    outcomes = {name: weighted_outcomes(rows, *table[name], n) for pair in against for name in pair}
    report[f"weighted_bon{n}_differences"] = {  # --against's weighted vote, paired over problems
        f"{a}_minus_{b}": bootstrap_diff([x - y for x, y in zip(outcomes[a], outcomes[b])], args.bootstrap)
        for a, b in against}
    report["seconds"] = round(time.perf_counter() - start, 1)
    report["peak_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print_table(report, max(args.ns))
    return 0


def score_with_policy(args, loop: Path, rows: list[dict], flat: list[dict]) -> dict:
    """The policy's own confidence for every candidate (`flat`, the rows' candidates in
    order; `c["confidence"]`, in place) and what that pass cost."""
    import torch
    from transformers import AutoModelForCausalLM

    from searchlearn.formatting import build_prompt
    from searchlearn.learn.scaffold import configure_cpu, load_tokenizer

    configure_cpu()
    questions = known_questions(loop, {r["id"] for r in rows})
    policy = args.policy or str(Path(latest(loop, f"policy-r{args.rounds}")["path"]) / "model")
    log(f"scoring {len(flat)} candidates of {len(rows)} problems with the policy {policy} ...")
    tokenizer = load_tokenizer(policy)
    model = AutoModelForCausalLM.from_pretrained(policy, dtype=torch.float32).eval()
    encoded = [encode(tokenizer, build_prompt(questions[r["id"]]), c["steps"]) for r in rows for c in r["candidates"]]
    t = time.perf_counter()
    for c, step_lp in zip(flat, step_log_probs(model, tokenizer, encoded, args.batch_size)):
        c["confidence"], c["weakest_token"] = confidence_values(step_lp), weakest_token_values(step_lp)
    score_s = time.perf_counter() - t
    return {"policy": policy, "score_seconds": round(score_s, 1),
            "scored_tok_s": round(sum(len(ids) for ids, _, _ in encoded) / score_s, 1)}


def print_table(report: dict, n: int) -> None:
    print(f"\n{report['problems']} held-out problems, {report['candidates']} candidates; pass@{n} "
          f"{report['pass_at_n'][f'n{n}']:.3f} (95 % intervals; differences paired over problems)")
    print(f"{'scorer':>22} {'candidate AUC':>22} {'matched step AUC':>22} {'pooled step AUC':>22} "
          f"{'weighted - majority @' + str(n):>26} {'best - majority':>24}")
    for name, m in report["scorers"].items():
        def fmt(d):
            return f"{d['auc']:.3f} [{d['ci95'][0]:.3f}, {d['ci95'][1]:.3f}]" if d["auc"] is not None else "-"

        def diff(d):
            return f"{d['diff']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]"

        bon = m["bon"][f"n{n}"]
        print(f"{name:>22} {fmt(m['candidate_auc']):>22} {fmt(m['step_auc_oracle_matched']):>22} "
              f"{fmt(m['step_auc_oracle']):>22} {diff(bon['weighted']['minus_majority']):>26} "
              f"{diff(bon['best']['minus_majority']):>24}")
    for name, m in report["scorers"].items():
        if m.get("tempered_vote"):
            print(f"{name} weighted vote @{n}, weights exp(logit(s)/T): "
                  + ", ".join(f"{t} {acc:.3f}" for t, acc in m["tempered_vote"].items()))
    print(f"majority @{n}: {report['scorers'][next(iter(report['scorers']))]['bon'][f'n{n}']['majority']['acc']:.3f}")
    for name, d in report["candidate_auc_differences"].items():
        print(f"candidate AUC {name}, paired over problems: {d['diff']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]")
    for name, d in report.get(f"weighted_bon{n}_differences", {}).items():
        print(f"weighted vote @{n} {name}, paired over problems: {d['diff']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]")
    for name, d in report.get("step_auc_oracle_differences", {}).items():
        print(f"pooled step AUC {name}, paired over problems: {d['diff']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]")


if __name__ == "__main__":
    sys.exit(main())
