"""Preference pairs from search data, for DPO.

Two granularities:
- solution level: a verified-correct vs an incorrect full solution of the same
  problem (outcome supervision; any search algorithm produces these);
- step level (MCTS-DPO style): two sibling steps under the same partial solution
  whose search values differ by at least `min_margin` (process supervision; needs
  a search tree, i.e. step-wise search).

Everything here is pure: search results in, pair dicts and counts out.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import asdict, dataclass
from typing import Iterable

from searchlearn.answers import is_correct
from searchlearn.formatting import STEP_SEPARATOR, build_prompt, join_steps, split_steps
from searchlearn.search.base import SearchResult

PAIR_LEVELS = ("solution", "step", "both")


@dataclass
class PairStats:
    """Counts for logging; one instance can collect over several calls."""

    solution: int = 0  # pairs made, by level
    step: int = 0
    dropped_by_margin: int = 0  # sibling pairs closer in value than min_margin
    dropped_by_cap: int = 0  # valid pairs left out by max_pairs_per_problem
    problems_without_solution_pairs: int = 0  # all candidates correct, or all wrong
    problems_without_step_pairs: int = 0  # no tree, or no sibling values far enough apart

    def to_dict(self) -> dict:
        return asdict(self)


def as_result(r: SearchResult | dict) -> SearchResult:
    return r if isinstance(r, SearchResult) else SearchResult.from_dict(r)


def _pair(prompt: str, chosen: str, rejected: str, problem_id: str, level: str, margin: float) -> dict:
    return {
        "prompt": prompt,
        "chosen": chosen,
        "rejected": rejected,
        "problem_id": problem_id,
        "level": level,
        "margin": float(margin),
    }


def _cap(items: list, max_items: int, stats: PairStats) -> list:
    """Keep the first `max_items` (0 or less = no cap), counting what is dropped."""
    if max_items <= 0 or len(items) <= max_items:
        return items
    stats.dropped_by_cap += len(items) - max_items
    return items[:max_items]


# --- solution level ---------------------------------------------------------------------


def _split_by_correctness(result: SearchResult) -> tuple[list[str], list[str]]:
    """Distinct normalised completion texts, correct and incorrect, in candidate order.

    Texts are cut at the answer line so rambling after it is never trained as
    "chosen"; `correct` falls back to the verifier when search left it unset.
    """
    correct, incorrect = [], []
    for cand in result.candidates:
        text = join_steps(split_steps(cand.text))
        if not text:
            continue
        ok = cand.correct if cand.correct is not None else is_correct(text, result.reference)
        bucket = correct if ok else incorrect
        if text not in bucket:
            bucket.append(text)
    return correct, incorrect


def solution_pairs(
    results: Iterable[SearchResult | dict],
    max_pairs_per_problem: int,
    seed: int,
    stats: PairStats | None = None,
) -> list[dict]:
    """(correct, incorrect) completions of the same problem; margin 1.0 (the verifier's
    reward gap). At most `max_pairs_per_problem` per problem (0 = all), sampled with a
    per-problem RNG so the choice does not depend on the order of problems."""
    stats = stats if stats is not None else PairStats()
    pairs = []
    for result in map(as_result, results):
        correct, incorrect = _split_by_correctness(result)
        combos = list(itertools.product(correct, incorrect))
        if not combos:
            stats.problems_without_solution_pairs += 1
            continue
        random.Random(f"{seed}:{result.problem_id}").shuffle(combos)
        prompt = build_prompt(result.question)
        for chosen, rejected in _cap(combos, max_pairs_per_problem, stats):
            pairs.append(_pair(prompt, chosen, rejected, result.problem_id, "solution", 1.0))
    stats.solution += len(pairs)
    return pairs


# --- step level -------------------------------------------------------------------------


def _prefix_steps(node_id: int, nodes: dict[int, dict]) -> list[str]:
    """Steps from the root (excluded: its step is "") down to and including `node_id`."""
    steps = []
    while node_id in nodes and nodes[node_id].get("parent") is not None:
        steps.append(nodes[node_id]["step"].strip())
        node_id = nodes[node_id]["parent"]
        if len(steps) > len(nodes):
            raise ValueError("search tree has a cycle")
    return steps[::-1]


def _sibling_groups(tree: list[dict]) -> dict[int, list[dict]]:
    """parent id -> children that carry a value, in tree order."""
    groups: dict[int, list[dict]] = {}
    for node in tree:
        if node.get("parent") is None or node.get("value") is None or not node.get("step", "").strip():
            continue
        groups.setdefault(node["parent"], []).append(node)
    return groups


def _tree_step_pairs(result: SearchResult, min_margin: float, stats: PairStats) -> list[tuple[float, dict]]:
    """Every qualifying sibling pair of one tree, as (margin, pair)."""
    nodes = {n["id"]: n for n in result.tree or []}
    found = []
    for parent, children in _sibling_groups(result.tree or []).items():
        prompt = build_prompt(result.question) + join_steps(_prefix_steps(parent, nodes))
        for a, b in itertools.combinations(children, 2):
            if a["step"].strip() == b["step"].strip():
                continue  # the same step sampled twice is no preference
            margin = abs(a["value"] - b["value"])
            # The tolerance keeps 0.7 - 0.5 (= 0.19999...) from failing min_margin=0.2.
            if margin == 0 or margin < min_margin - 1e-9:
                stats.dropped_by_margin += 1
                continue
            hi, lo = (a, b) if a["value"] > b["value"] else (b, a)
            chosen, rejected = hi["step"].strip() + STEP_SEPARATOR, lo["step"].strip() + STEP_SEPARATOR
            found.append((margin, _pair(prompt, chosen, rejected, result.problem_id, "step", margin)))
    return found


def step_pairs(
    results: Iterable[SearchResult | dict],
    min_margin: float,
    max_pairs_per_problem: int,
    stats: PairStats | None = None,
) -> list[dict]:
    """Sibling steps whose values differ by >= min_margin (and by more than 0).

    prompt = build_prompt(question) + the shared prefix steps, one per line; chosen /
    rejected = the higher / lower valued step + "\\n". When capped, the largest
    margins are kept: they are the least likely to be value-estimation noise.
    """
    stats = stats if stats is not None else PairStats()
    pairs = []
    for result in map(as_result, results):
        found = _tree_step_pairs(result, min_margin, stats)
        if not found:
            stats.problems_without_step_pairs += 1
            continue
        # Stable sort on rounded margins: ties (up to float noise) keep tree order.
        found.sort(key=lambda mp: -round(mp[0], 9))
        pairs.extend(p for _, p in _cap(found, max_pairs_per_problem, stats))
    stats.step += len(pairs)
    return pairs


def build_pairs(
    results: Iterable[SearchResult | dict],
    level: str,
    min_margin: float,
    max_pairs_per_problem: int,
    seed: int,
) -> tuple[list[dict], dict]:
    """Pairs for `level` in {solution, step, both} plus their PairStats as a dict.

    With "both", the cap applies to each level separately, so a problem can give
    up to 2 * max_pairs_per_problem pairs.
    """
    if level not in PAIR_LEVELS:
        raise ValueError(f"unknown pair level {level!r}; choose one of {PAIR_LEVELS}")
    results = [as_result(r) for r in results]
    stats, pairs = PairStats(), []
    if level in ("solution", "both"):
        pairs += solution_pairs(results, max_pairs_per_problem, seed, stats)
    if level in ("step", "both"):
        pairs += step_pairs(results, min_margin, max_pairs_per_problem, stats)
    return pairs, stats.to_dict()
