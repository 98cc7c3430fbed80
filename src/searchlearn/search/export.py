"""Search results -> training data, for any algorithm.

- verified_traces:  correct solutions as (prompt, completion) rows, for RFT;
- step_values:      each root-to-terminal path of a tree with its node values as
                    per-step labels, in the PRM's {question, steps, labels} format;
- preference_pairs: sibling steps after a shared prefix whose values differ (step DPO);
- solution_pairs:   a correct vs an incorrect solution of one problem (DPO).

Everything is pure and deterministic: results (or their dicts) in, rows out.
"""

from __future__ import annotations

import itertools
from typing import Iterable

from searchlearn.answers import is_correct
from searchlearn.formatting import STEP_SEPARATOR, build_prompt, join_steps, split_steps
from searchlearn.search.base import SearchResult, node_path

# Below this, two values count as equal: 0.7 - 0.5 must still pass min_margin=0.2.
_EPS = 1e-9


def _as_result(r: SearchResult | dict) -> SearchResult:
    return r if isinstance(r, SearchResult) else SearchResult.from_dict(r)


def _trace(text: str) -> str:
    """A completion cut after its answer line: what follows is never a training target."""
    return join_steps(split_steps(text))


def verified_traces(results: Iterable[SearchResult | dict], max_per_problem: int = 4,
                    dedupe: bool = True) -> list[dict]:
    """{problem_id, prompt, completion} for correct candidates, in result then candidate
    order, at most `max_per_problem` per problem. A candidate counts only if its trace,
    cut after the first answer line, still verifies (a wrong answer followed by a right
    one must not become a target). `dedupe` compares whitespace-normalised traces."""
    rows = []
    for result in map(_as_result, results):
        seen: set[str] = set()
        kept = 0
        prompt = build_prompt(result.question)
        for cand in result.candidates:
            if kept >= max_per_problem:
                break
            trace = _trace(cand.text)
            if cand.correct is not True or not is_correct(trace, result.reference):
                continue
            key = " ".join(trace.split())
            if dedupe and key in seen:
                continue
            seen.add(key)
            kept += 1
            rows.append({"problem_id": result.problem_id, "prompt": prompt, "completion": trace})
    return rows


def step_values(results: Iterable[SearchResult | dict]) -> list[dict]:
    """One row per terminal node: {problem_id, question, steps, labels, source}, where
    labels[j] is the tree value of the j-th node on the path (MCTS: its backed-up Q).
    Paths with an unvalued node are skipped. Beam/DVTS values are the scorer's own
    scores, so training a PRM on those rows only distils it: filter on `source`."""
    rows = []
    for result in map(_as_result, results):
        for node in result.tree or []:
            if not node["terminal"]:
                continue
            path = node_path(result.tree, node["id"])
            if any(n["value"] is None for n in path):
                continue
            rows.append({"problem_id": result.problem_id, "question": result.question,
                         "steps": [n["step"] for n in path], "labels": [float(n["value"]) for n in path],
                         "source": result.algorithm})
    return rows


def _pair(problem_id: str, prompt: str, chosen: str, rejected: str, margin: float, level: str) -> dict:
    return {"problem_id": problem_id, "prompt": prompt, "chosen": chosen, "rejected": rejected,
            "margin": float(margin), "level": level}


def _sibling_pairs(result: SearchResult, min_margin: float) -> list[dict]:
    """Every pair of valued siblings with distinct steps and values at least min_margin apart."""
    siblings: dict[int, list[dict]] = {}
    for node in result.tree or []:
        if node["parent"] is not None and node["value"] is not None and node["step"].strip():
            siblings.setdefault(node["parent"], []).append(node)
    pairs = []
    for parent, kids in siblings.items():
        prefix = join_steps([n["step"] for n in node_path(result.tree, parent)])
        prompt = build_prompt(result.question) + prefix
        for a, b in itertools.combinations(kids, 2):
            margin = abs(a["value"] - b["value"])
            if a["step"].strip() == b["step"].strip() or margin <= _EPS or margin < min_margin - _EPS:
                continue
            hi, lo = (a, b) if a["value"] > b["value"] else (b, a)
            pairs.append(_pair(result.problem_id, prompt, hi["step"].strip() + STEP_SEPARATOR,
                               lo["step"].strip() + STEP_SEPARATOR, margin, "step"))
    return pairs


def preference_pairs(results: Iterable[SearchResult | dict], min_margin: float = 0.0,
                     max_pairs_per_problem: int = 8) -> list[dict]:
    """Step-level pairs {problem_id, prompt, chosen, rejected, margin, level="step"}:
    prompt = build_prompt(question) + the shared prefix; chosen / rejected = the higher /
    lower valued sibling step + "\\n". Per problem the largest margins are kept (they
    are the least likely to be value noise); 0 or less means no cap."""
    rows = []
    for result in map(_as_result, results):
        # Stable sort: equal margins keep tree order, so the output is deterministic.
        pairs = sorted(_sibling_pairs(result, min_margin), key=lambda p: -p["margin"])
        rows += pairs[:max_pairs_per_problem] if max_pairs_per_problem > 0 else pairs
    return rows


def solution_pairs(results: Iterable[SearchResult | dict], max_pairs_per_problem: int = 8) -> list[dict]:
    """Solution-level pairs: a correct vs an incorrect distinct trace of the same problem,
    margin 1.0 (the verifier's reward gap), level="solution". Pairs are taken along
    anti-diagonals of (correct i, incorrect j), i.e. by i + j, so a capped list still
    uses many different traces instead of one correct trace against everything."""
    rows = []
    for result in map(_as_result, results):
        right, wrong = [], []
        for cand in result.candidates:
            trace = _trace(cand.text)
            if not trace or cand.correct is None:
                continue
            bucket = right if cand.correct and is_correct(trace, result.reference) else wrong
            if trace not in bucket:
                bucket.append(trace)
        combos = sorted(itertools.product(range(len(right)), range(len(wrong))), key=lambda ij: (sum(ij), ij))
        if max_pairs_per_problem > 0:
            combos = combos[:max_pairs_per_problem]
        prompt = build_prompt(result.question)
        rows += [_pair(result.problem_id, prompt, right[i], wrong[j], 1.0, "solution") for i, j in combos]
    return rows
