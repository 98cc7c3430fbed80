"""Search results -> per-step values for PRM training, for any algorithm.

step_values turns each root-to-terminal path of a search tree into a row of the
PRM's labelled-step format ({question, steps, labels}), the node values along
the path being the labels (e.g. MCTS Q-values). The other exports of search data
live with their consumers and read the same SearchResult rows: verified traces
for RFT in learn/rft.py (select_rft_examples), solution- and step-level
preference pairs for DPO in learn/pairs.py.
"""

from __future__ import annotations

from typing import Iterable

from searchlearn.search.base import SearchResult, node_path


def _as_result(r: SearchResult | dict) -> SearchResult:
    return r if isinstance(r, SearchResult) else SearchResult.from_dict(r)


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
