"""Step labels (Math-Shepherd Monte-Carlo, or the exact oracle) and the labelled-step
dataset format.

A step's Monte-Carlo value is estimated by completing the solution prefix that ends
with it `rollouts` times and verifying the final answers: soft label = fraction
correct, hard label = 1 if any rollout is correct (Wang et al. 2024, "Math-Shepherd").
Where a problem has reference equations (arithmetic problems, annotated GSM8K), the
step oracle (reward/oracle.py) gives every step's truth without rollouts: a label
source of its own (`prm.labels=oracle`, an upper bound) and the yardstick for the
Monte-Carlo labels' noise (reward/quality.py).

Labelled-step rows (JSONL, one per solution) also carry outcome labels (reward/orm.py,
every step labelled with the solution's correctness), so the reader accepts any `source`:
    {"question": str, "steps": [str], "labels": [float in 0..1],
     "problem_id": str, "source": "mc_soft" | "mc_hard" | "oracle" | "outcome" | ...,
     "oracle": [0.0 | 1.0] (optional: the oracle's verdict per step, where it has one),
     "solve_rate": float (optional: the problem's share of correct search candidates)}
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Iterable, Sequence

from searchlearn.answers import is_correct
from searchlearn.formatting import build_prompt, is_answer_step, join_steps, split_steps
from searchlearn.generation.base import Generator, SamplingParams
from searchlearn.problems.base import DatasetFormatError, Problem, iter_jsonl
from searchlearn.reward.oracle import check, reference_equations

LABEL_MODES = ("soft", "hard")
LABEL_SOURCES = ("mc", "oracle")  # prm.labels
ROW_KEYS = ("question", "steps", "labels", "problem_id", "source")
# Reward-model kinds trained on per-step labels; every other kind learns from outcome
# rows (reward/orm.py), which need no rollouts. Kept here, free of model code, so the
# labelling stage can ask without depending on any trainer.
STEP_LABEL_KINDS = ("prm", "implicit_step")

# solutions[i] holds the step lists sampled for problems[i].
Solutions = Sequence[Sequence[Sequence[str]]]


# ---- the dataset format ---------------------------------------------------------


def row_error(row: dict) -> str | None:
    """Why `row` is not a valid labelled-step row, or None. Extra keys are allowed."""
    missing = [k for k in ROW_KEYS if k not in row]
    if missing:
        return f"missing key(s) {missing}"
    steps, labels = row["steps"], row["labels"]
    if not isinstance(row["question"], str) or not isinstance(row["source"], str):
        return "question and source must be strings"
    if not isinstance(steps, list) or not steps:
        return "steps must be a non-empty list"
    if not isinstance(labels, list) or len(labels) != len(steps):
        return f"{len(steps)} steps but {len(labels) if isinstance(labels, list) else 'no list of'} labels"
    for j, step in enumerate(steps):
        if not isinstance(step, str) or not step.strip():
            return f"step {j} is empty or not a string"
    for j, y in enumerate(labels):
        # bool is an int in Python; a true/false label almost always means a bug upstream.
        if isinstance(y, bool) or not isinstance(y, (int, float)):
            return f"label {j} is not a number: {y!r}"
        if not 0.0 <= y <= 1.0:  # also rejects NaN
            return f"label {j} = {y!r} is outside [0, 1]"
    oracle = row.get("oracle")
    if oracle is not None:
        if not isinstance(oracle, list) or len(oracle) != len(steps):
            return f"{len(steps)} steps but an oracle of {len(oracle) if isinstance(oracle, list) else 'no list'}"
        if any(isinstance(y, bool) or y not in (0, 1) for y in oracle):
            return f"oracle verdicts must be 0 or 1, got {oracle!r}"
    return None


def write_labelled_steps(path: str | Path, rows: Iterable[dict]) -> Path:
    """Validate and write rows atomically (a bad row raises before anything is written)."""
    from searchlearn.artifacts import write_jsonl

    rows = list(rows)
    for i, row in enumerate(rows):
        err = row_error(row)
        if err:
            raise ValueError(f"labelled-step row {i} is invalid: {err}")
    return write_jsonl(path, rows)


def read_labelled_steps(path: str | Path) -> list[dict]:
    """Read and validate rows; any malformed row raises DatasetFormatError naming file:line."""
    rows = []
    for lineno, row in iter_jsonl(path):
        err = row_error(row)
        if err:
            raise DatasetFormatError(f"{path}:{lineno}: bad labelled-step row: {err}")
        row = {**row, "problem_id": str(row["problem_id"]), "labels": [float(y) for y in row["labels"]]}
        if row.get("oracle") is not None:
            row["oracle"] = [float(y) for y in row["oracle"]]
        rows.append(row)
    return rows


# ---- which solutions to label ----------------------------------------------------


def solve_rate(result) -> float:
    """The share of a search result's verified candidates that are correct (a
    SearchResult or its dict); 0 when none was verified."""
    res = result if isinstance(result, dict) else result.to_dict()
    verdicts = [bool(c["correct"]) for c in res["candidates"] if c.get("correct") is not None]
    return sum(verdicts) / len(verdicts) if verdicts else 0.0


def informative(results: Iterable, min_rate: float = 0.0, max_rate: float = 1.0) -> list:
    """The results whose solve rate lies in [min_rate, max_rate].

    Why: at a solve rate near 0, almost every prefix's Monte-Carlo value is near 0,
    right step or wrong, and near 1 almost every one is near 1; the labels then carry
    the problem's difficulty, not the step's quality. Between them, rollouts from a
    right prefix succeed more often than from a wrong one, and the problem has both
    correct and incorrect solutions to contrast (for outcome-trained models too)."""
    return [r for r in results if min_rate <= solve_rate(r) <= max_rate]


def solutions_from_results(results: Iterable, per_problem: int) -> tuple[list[Problem], list[list[list[str]]]]:
    """Problems and solutions to label from search results (SearchResult objects or
    their dicts), reusing search's samples instead of drawing new ones.

    Correct and incorrect candidates are interleaved before capping at
    `per_problem`, so both kinds get labelled: incorrect solutions carry the
    informative low labels, correct ones anchor the high end.
    """
    problems, solutions = [], []
    for res in results:
        res = res if isinstance(res, dict) else res.to_dict()
        good = [split_steps(c["text"]) for c in res["candidates"] if c.get("correct")]
        bad = [split_steps(c["text"]) for c in res["candidates"] if not c.get("correct")]
        mixed = [s for pair in _zip_longest(good, bad) for s in pair]
        problems.append(Problem(id=str(res["problem_id"]), question=res["question"], answer=res["reference"]))
        solutions.append(_dedupe(mixed)[:per_problem])
    return problems, solutions


def _zip_longest(a: list, b: list) -> list[list]:
    return [[x for x in (a[i] if i < len(a) else None, b[i] if i < len(b) else None) if x is not None]
            for i in range(max(len(a), len(b)))]


def _dedupe(step_lists: Iterable[list[str]]) -> list[list[str]]:
    seen, out = set(), []
    for steps in step_lists:
        key = tuple(steps)
        if steps and key not in seen:
            seen.add(key)
            out.append(list(steps))
    return out


# ---- Monte-Carlo estimation ------------------------------------------------------


def estimate_step_labels(
    problems: Sequence[Problem],
    solutions: Solutions,
    generator: Generator,
    rollouts: int,
    mode: str = "soft",
    max_steps: int = 8,
    sampling: SamplingParams | None = None,
) -> tuple[list[dict], dict]:
    """Label every step of every solution by Monte-Carlo rollouts.

    All rollouts of the call go through ONE `generator.generate` (prompts = every
    prefix that needs rollouts, n = rollouts), so a prefix-caching backend shares
    the question and earlier steps across them. Two labels need no rollouts:
    - a final answer step's label is the solution's own correctness (rollouts
      from a prefix that already states the answer can only repeat it);
    - in hard mode, every step of a correct solution is 1 (the solution itself is
      the witness that the prefix can reach the answer).
    Solutions longer than `max_steps` are labelled on their first `max_steps`
    steps only (counted in stats["truncated_solutions"]).
    `sampling` sets temperature/top_p/max_new_tokens of each rollout (n is
    replaced by `rollouts`; leave `stop` empty: a rollout must reach an answer).
    """
    if mode not in LABEL_MODES:
        raise ValueError(f"unknown label mode {mode!r}; choose one of {LABEL_MODES}")
    if rollouts < 1 or max_steps < 1:
        raise ValueError("rollouts and max_steps must be >= 1")
    rows, jobs, stats = _plan_labels(problems, solutions, mode, max_steps)
    stats.update(prefixes=len(jobs), rollouts=len(jobs) * rollouts, tokens=0, generate_seconds=0.0)
    if jobs:
        params = dataclasses.replace(sampling or SamplingParams(), n=rollouts)
        before = generator.stats.seconds
        outs = generator.generate([prompt for _, _, prompt, _ in jobs], params)
        stats["generate_seconds"] = generator.stats.seconds - before
        for (r, k, _, reference), comps in zip(jobs, outs):
            hits = sum(is_correct(join_steps(split_steps(c.text)), reference) for c in comps)
            rows[r]["labels"][k] = hits / len(comps) if mode == "soft" else float(hits > 0)
            stats["tokens"] += sum(c.num_tokens for c in comps)
    stats.update(mode=mode, **summarize_labels(rows))
    return rows, stats


def summarize_labels(rows: Sequence[dict]) -> dict:
    """Label statistics that are ratios, computed from the rows themselves (so merged
    shards report the same numbers as one unsharded run)."""
    labels = [y for row in rows for y in row["labels"]]
    return {"labelled_steps": len(labels),
            "label_mean": sum(labels) / len(labels) if labels else math.nan,
            "frac_positive": sum(y >= 0.5 for y in labels) / len(labels) if labels else math.nan}


def _plan_labels(problems: Sequence[Problem], solutions: Solutions, mode: str, max_steps: int):
    """Rows with the labels known without rollouts filled in (others None), and
    the rollout jobs (row index, step index, prefix prompt, reference)."""
    if len(problems) != len(solutions):
        raise ValueError(f"{len(problems)} problems but {len(solutions)} solution lists")
    rows, jobs = [], []
    stats = {"solutions": 0, "truncated_solutions": 0, "final_from_verifier": 0, "witnessed_steps": 0}
    for problem, sols in zip(problems, solutions):
        for raw in sols:
            steps = _normalised(raw)
            if not steps:
                continue
            correct = is_correct(join_steps(steps), problem.answer)
            stats["truncated_solutions"] += len(steps) > max_steps
            steps = steps[:max_steps]
            labels: list[float | None] = [None] * len(steps)
            if mode == "hard" and correct:
                labels = [1.0] * len(steps)
                stats["witnessed_steps"] += len(steps)
            elif is_answer_step(steps[-1]):
                labels[-1] = float(correct)
                stats["final_from_verifier"] += 1
            prompt = build_prompt(problem.question)
            jobs += [(len(rows), k, prompt + join_steps(steps[: k + 1]), problem.answer)
                     for k, y in enumerate(labels) if y is None]
            rows.append({"question": problem.question, "steps": steps, "labels": labels,
                         "problem_id": problem.id, "source": f"mc_{mode}"})
            stats["solutions"] += 1
    return rows, jobs, stats


def _normalised(steps: Sequence[str]) -> list[str]:
    """Strip steps, drop blank ones, cut after the answer line."""
    return split_steps(join_steps(list(steps)))


def label_round(generator: Generator | None, cfg: dict, results: Iterable,
                problems: dict[str, Problem] | None = None) -> tuple[list[dict], dict]:
    """One round of step labels from the `prm:` config section (plain dict): the
    solutions this round's search produced (`results`), no extra sampling.

    `cfg["labels"]`: "mc" (default) labels by rollouts with `generator`; "oracle"
    labels by the step oracle and needs no generator. `problems` (by id, with their
    meta) give each row its `oracle` verdicts where the problem has reference
    equations; with oracle labels, solutions of problems without them are dropped."""
    results = list(results)
    chosen, solutions = solutions_from_results(results, cfg["solutions_per_problem"])
    source = cfg.get("labels", "mc")
    if source == "oracle":
        rows, stats = oracle_step_labels(chosen, solutions, problems or {}, cfg["max_steps"])
    elif source == "mc":
        sampling = SamplingParams(temperature=cfg["temperature"], top_p=cfg.get("top_p", 1.0),
                                  max_new_tokens=cfg["max_new_tokens"])
        rows, stats = estimate_step_labels(chosen, solutions, generator, cfg["rollouts"], cfg["label_mode"],
                                           cfg["max_steps"], sampling)
    else:
        raise ValueError(f"unknown label source {source!r}; choose one of {LABEL_SOURCES}")
    return annotate(rows, results, problems or {}), stats


def annotate(rows: Iterable[dict], results: Iterable, problems: dict[str, Problem]) -> list[dict]:
    """`rows` with each problem's search solve rate and, where the oracle has a
    verdict, its `oracle` labels: what label-noise measurements group and compare by."""
    rates = {str(r["problem_id"] if isinstance(r, dict) else r.problem_id): solve_rate(r) for r in results}
    return [{**row, "solve_rate": rates[row["problem_id"]]} if row["problem_id"] in rates else row
            for row in with_oracle(rows, problems)]


# ---- the oracle's labels -----------------------------------------------------------


def oracle_verdicts(row: dict, problems: dict[str, Problem]) -> list[float] | None:
    """The oracle's 0/1 verdict on each step of a labelled-step row, or None when its
    problem is unknown here or has no reference equations."""
    problem = problems.get(row["problem_id"])
    equations = reference_equations(problem.meta) if problem is not None else None
    if equations is None:
        return None
    return check(problem.question, problem.answer, equations, row["steps"]).labels()


def with_oracle(rows: Iterable[dict], problems: dict[str, Problem]) -> list[dict]:
    """`rows`, each with its `oracle` verdicts where its problem has them."""
    out = []
    for row in rows:
        verdicts = oracle_verdicts(row, problems)
        out.append(row if verdicts is None else {**row, "oracle": verdicts})
    return out


def oracle_step_labels(chosen: Sequence[Problem], solutions: Solutions, problems: dict[str, Problem],
                       max_steps: int = 8) -> tuple[list[dict], dict]:
    """Step labels from the oracle instead of rollouts (`prm.labels=oracle`): 1 before
    a solution's first wrong step, 0 from it on. No generation; solutions of problems
    without reference equations get no row (counted in stats["no_oracle_solutions"])."""
    rows, stats = [], {"solutions": 0, "truncated_solutions": 0, "no_oracle_solutions": 0, "prefixes": 0,
                       "rollouts": 0, "tokens": 0, "generate_seconds": 0.0}
    for problem, sols in zip(chosen, solutions):
        for raw in sols:
            steps = _normalised(raw)
            if not steps:
                continue
            stats["truncated_solutions"] += len(steps) > max_steps
            row = {"question": problem.question, "steps": steps[:max_steps], "labels": [],
                   "problem_id": problem.id, "source": "oracle"}
            verdicts = oracle_verdicts(row, problems)
            if verdicts is None:
                stats["no_oracle_solutions"] += 1
                continue
            rows.append({**row, "labels": verdicts, "oracle": verdicts})
            stats["solutions"] += 1
    stats.update(mode="oracle", **summarize_labels(rows))
    return rows, stats
