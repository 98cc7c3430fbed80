"""Diverse Verifier Tree Search (Beeching et al., huggingface/search-and-learn).

Beam search at large N tends to pour every beam into the one prefix the PRM likes
best. DVTS splits the budget into n // expansions independent subtrees instead:
each samples `expansions` next steps from its own single beam and keeps the one
the scorer ranks highest (greedy by PRM), until it finishes. A subtree's choices
only ever compare its own samples, so a high-scoring prefix in one subtree
cannot take over another.

Budget: subtrees * expansions <= n step samples per problem per search step, at
most n * max_steps in all (search-and-learn's `beam_width` is our `expansions`).
All subtrees of all problems advance together: one generate and one scorer call
per search step.
"""

from __future__ import annotations

from typing import Sequence

from searchlearn.generation.base import Generator
from searchlearn.problems.base import Problem
from searchlearn.reward.base import StepScorer
from searchlearn.search.base import SearchBudget, SearchResult
from searchlearn.search.beam import Beams, StepTree, check_common, require_scorer, run_beams


class DVTS:
    name = "dvts"

    def __init__(self, expansions: int = 4, aggregation: str = "last", selection: str = "best"):
        check_common(expansions, aggregation, selection)
        self.expansions = expansions
        self.aggregation = aggregation
        self.selection = selection

    @classmethod
    def from_config(cls, search_cfg: dict) -> "DVTS":
        return cls(**(search_cfg.get(cls.name) or {}))

    needs_scorer = True  # each subtree keeps its best-scored step

    def fits(self, budget: SearchBudget) -> bool:
        try:
            return self.subtrees(budget.n) >= 1
        except ValueError:
            return False

    def subtrees(self, n: int) -> int:
        subtrees = n // self.expansions
        if subtrees < 1:
            raise ValueError(f"dvts needs n >= expansions (one subtree), got n={n}, expansions={self.expansions}")
        return subtrees

    def search(
        self, problems: Sequence[Problem], generator: Generator, scorer: StepScorer | None, budget: SearchBudget
    ) -> list[SearchResult]:
        require_scorer(self.name, scorer)
        subtrees = self.subtrees(budget.n)
        trees = [StepTree(p, budget.max_steps) for p in problems]
        # Subtrees share the root node but nothing else: each is its own width-1 group.
        groups = [Beams(tree, width=1, active=[0]) for tree in trees for _ in range(subtrees)]
        run_beams(groups, generator, scorer, budget, self.expansions, self.aggregation)
        extra = {"subtrees": subtrees, "expansions": self.expansions}
        return [t.result(self.name, self.selection, self.aggregation, extra) for t in trees]
