"""Monte Carlo tree search over solution steps (AlphaZero / ReST-MCTS* style).

Each iteration runs one simulation for every problem still searching, in lock-step:
  select    from the root, follow the child with the highest PUCT score
            Q + c_puct * P * sqrt(N_parent) / (1 + N_child) down to an unexpanded node;
  expand    sample `expansions` next steps there (ONE generate call for all
            problems), merge identical steps, give each distinct child a prior P;
  evaluate  every new child once: its PRM value, a rollout to a final answer
            (a second generate call), or a weighted mix; ONE scorer call for all;
  backup    add each child's value to the running mean Q of it and its ancestors.

Subtrees with nothing left to expand (every leaf terminal) are closed and never
selected again: re-visiting a finished solution costs no tokens, so it would
let a problem spin without spending its budget.

Rollout outcomes are checked by the verifier only when `use_verifier=True`
(training-data generation, where the reference answer is known). At test time
leave it off: rollouts are then valued by the scorer.

Budget: a problem's generated tokens never exceed n * max_new_tokens, the most
best-of-n could spend. A simulation starts only if its worst case (every
expansion and rollout at its token limit) still fits.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

from searchlearn.formatting import join_steps, split_steps
from searchlearn.generation.base import Generator, SamplingParams
from searchlearn.problems.base import Problem
from searchlearn.reward.base import StepScorer, aggregate
from searchlearn.search.base import Candidate, SearchBudget, SearchResult
from searchlearn.search.beam import Step, StepTree, check_common, expand
from searchlearn.search.best_of_n import make_candidate
from searchlearn.search.selection import SCORED_SELECTIONS

EVALUATIONS = ("prm", "rollout", "mixed")
PRIORS = ("uniform", "policy")


def puct_score(q: float, prior: float, parent_visits: int, child_visits: int, c_puct: float) -> float:
    return q + c_puct * prior * math.sqrt(parent_visits) / (1 + child_visits)


def select_child(nodes: Sequence[dict], parent: int, candidates: Sequence[int], c_puct: float) -> int:
    """The candidate child with the highest PUCT score (the first one on ties)."""
    n_parent = nodes[parent]["visits"]

    def score(c: int) -> float:
        return puct_score(nodes[c]["value"] or 0.0, nodes[c]["prior"] or 0.0, n_parent, nodes[c]["visits"], c_puct)

    best = candidates[0]
    for c in candidates[1:]:
        if score(c) > score(best):
            best = c
    return best


def backup(nodes: Sequence[dict], node_id: int, value: float) -> None:
    """Add one evaluation to node_id and every ancestor: N += 1, Q = running mean."""
    while node_id is not None:
        node = nodes[node_id]
        node["visits"] += 1
        q = node["value"] or 0.0
        node["value"] = q + (value - q) / node["visits"]
        node_id = node["parent"]


def child_priors(steps: Sequence[Step], how: str) -> list[tuple[Step, float]]:
    """Merge identical samples into one child each. `uniform`: P = 1/k over the k
    distinct steps; `policy`: P = how often the policy sampled that step."""
    counts = Counter((s.text, s.terminal) for s in steps)
    first = {}
    for s in steps:
        first.setdefault((s.text, s.terminal), s)
    if how == "uniform":
        return [(first[k], 1.0 / len(counts)) for k in counts]
    return [(first[k], c / len(steps)) for k, c in counts.items()]


@dataclass
class _Problem:
    """One problem's MCTS state beside its tree."""

    tree: StepTree
    children: dict[int, list[int]] = field(default_factory=dict)  # expanded nodes only
    closed: set[int] = field(default_factory=set)  # nothing left to expand below
    simulations: int = 0

    def select_leaf(self, c_puct: float) -> int | None:
        if 0 in self.closed:
            return None
        node = 0
        while node in self.children:
            node = select_child(self.tree.nodes, node, [c for c in self.children[node] if c not in self.closed],
                                c_puct)
        return node

    def close_exhausted(self, node: int) -> None:
        """Close node, then its ancestors, while every child below them is closed."""
        while node is not None and node in self.children and all(c in self.closed for c in self.children[node]):
            self.closed.add(node)
            node = self.tree.nodes[node]["parent"]


class MCTS:
    name = "mcts"

    def __init__(
        self, expansions: int = 4, c_puct: float = 1.0, prior: str = "uniform", evaluation: str = "prm",
        rollout_weight: float = 0.5, use_verifier: bool = False, aggregation: str = "last",
        selection: str = "best", max_simulations: int = 0,
    ):
        check_common(expansions, aggregation, selection)
        if prior not in PRIORS:
            raise ValueError(f"unknown prior {prior!r}; choose one of {PRIORS}")
        if evaluation not in EVALUATIONS:
            raise ValueError(f"unknown evaluation {evaluation!r}; choose one of {EVALUATIONS}")
        if not 0.0 <= rollout_weight <= 1.0:
            raise ValueError(f"rollout_weight must be in [0, 1], got {rollout_weight}")
        self.expansions = expansions
        self.c_puct = c_puct
        self.prior = prior
        self.evaluation = evaluation
        self.rollout_weight = rollout_weight
        self.use_verifier = use_verifier
        self.aggregation = aggregation
        self.selection = selection
        self.max_simulations = max_simulations

    @classmethod
    def from_config(cls, search_cfg: dict) -> "MCTS":
        return cls(**(search_cfg.get(cls.name) or {}))

    @property
    def needs_scorer(self) -> bool:
        """Without a scorer MCTS can only value rollouts, by the verifier, and pick by count."""
        return self.evaluation != "rollout" or not self.use_verifier or self.selection in SCORED_SELECTIONS

    def fits(self, budget: SearchBudget) -> bool:
        return self.worst_case(budget) <= budget.n * budget.max_new_tokens

    def check(self, scorer: StepScorer | None, budget: SearchBudget) -> None:
        if scorer is None and self.evaluation != "rollout":
            raise ValueError(f"mcts evaluation={self.evaluation!r} needs a scorer (PRM)")
        if scorer is None and not self.use_verifier:
            raise ValueError("mcts without a scorer can only value rollouts with use_verifier=True")
        if scorer is None and self.selection in SCORED_SELECTIONS:
            raise ValueError(f"selection {self.selection!r} needs a scorer")
        if not self.fits(budget):
            raise ValueError(
                f"one mcts simulation may spend {self.worst_case(budget)} tokens, more than the budget "
                f"n * max_new_tokens = {budget.n * budget.max_new_tokens}: raise n or lower expansions"
            )

    def worst_case(self, budget: SearchBudget) -> int:
        rollout = budget.max_new_tokens if self.evaluation != "prm" else 0
        return self.expansions * (budget.max_step_tokens + rollout)

    def search(
        self, problems: Sequence[Problem], generator: Generator, scorer: StepScorer | None, budget: SearchBudget
    ) -> list[SearchResult]:
        self.check(scorer, budget)
        states = [_Problem(StepTree(p, budget.max_steps)) for p in problems]
        while True:
            batch = [(s, leaf) for s in states if (leaf := self.next_leaf(s, budget)) is not None]
            if not batch:
                break
            self.simulate(batch, generator, scorer, budget)
        return [
            s.tree.result(self.name, self.selection, self.aggregation, {"simulations": s.simulations})
            for s in states
        ]

    def next_leaf(self, state: _Problem, budget: SearchBudget) -> int | None:
        if self.max_simulations and state.simulations >= self.max_simulations:
            return None
        if state.tree.tokens + self.worst_case(budget) > budget.n * budget.max_new_tokens:
            return None
        return state.select_leaf(self.c_puct)

    def simulate(self, batch: list[tuple[_Problem, int]], generator: Generator, scorer: StepScorer | None,
                 budget: SearchBudget) -> None:
        sampled = expand(generator, [(s.tree, leaf) for s, leaf in batch], self.expansions, budget)
        new: list[tuple[_Problem, int]] = []
        for (state, leaf), steps in zip(batch, sampled):
            state.simulations += 1
            kids = []
            for step, prior in child_priors(steps, self.prior):
                kid = state.tree.add(leaf, step)
                state.tree.nodes[kid]["prior"] = prior
                if state.tree.nodes[kid]["terminal"]:
                    state.closed.add(kid)
                kids.append(kid)
            state.children[leaf] = kids
            new += [(state, k) for k in kids]
            if not kids:
                backup(state.tree.nodes, leaf, 0.0)  # every sample was empty: a dead end
        for (state, node), value in zip(new, self.evaluate(new, generator, scorer, budget)):
            backup(state.tree.nodes, node, value)
        for state, leaf in batch:
            state.close_exhausted(leaf)

    def evaluate(self, new: list[tuple[_Problem, int]], generator: Generator, scorer: StepScorer | None,
                 budget: SearchBudget) -> list[float]:
        """One value per new node: rollouts first (one generate call), then one scorer
        call for the new nodes and the rollout solutions together."""
        to_roll = [i for i, (s, node) in enumerate(new)
                   if self.evaluation != "prm" and not s.tree.nodes[node]["terminal"]]
        rollouts = dict(zip(to_roll, self.rollout(generator, [new[i] for i in to_roll], budget)))
        if scorer is not None:
            self.score(scorer, [(s.tree, node) for s, node in new],
                       [(new[i][0].tree, rollouts[i]) for i in to_roll])
        return [self.value(s.tree, node, rollouts.get(i)) for i, (s, node) in enumerate(new)]

    def score(self, scorer: StepScorer, nodes: list[tuple[StepTree, int]],
              rollouts: list[tuple[StepTree, Candidate]]) -> None:
        if not nodes:
            return
        questions = [t.problem.question for t, _ in nodes + rollouts]
        step_lists = [t.steps(node) for t, node in nodes] + [split_steps(c.text) or [""] for _, c in rollouts]
        scores = scorer.score(questions, step_lists)
        for (tree, node), sc in zip(nodes, scores):
            tree.step_scores[node] = list(sc)
        for (_, cand), sc in zip(rollouts, scores[len(nodes):]):
            cand.step_scores, cand.score = list(sc), aggregate(sc, self.aggregation)

    def rollout(self, generator: Generator, items: list[tuple[_Problem, int]],
                budget: SearchBudget) -> list[Candidate]:
        """Finish each partial solution with one sample (one generate call for all)."""
        if not items:
            return []
        params = SamplingParams(n=1, temperature=budget.temperature, top_p=budget.top_p,
                                max_new_tokens=budget.max_new_tokens)
        outputs = generator.generate([s.tree.prompt(node) for s, node in items], params)
        cands = []
        for (state, node), (completion,) in zip(items, outputs):
            tree = state.tree
            tree.tokens += completion.num_tokens
            room = tree.max_steps - tree.nodes[node]["depth"]  # the solution may not outgrow max_steps
            text = join_steps(tree.steps(node) + split_steps(completion.text)[:room])
            cand = make_candidate(tree.problem, text, tree.path_tokens(node) + completion.num_tokens)
            tree.rollouts.append(cand)
            cands.append(cand)
        return cands

    def value(self, tree: StepTree, node: int, rollout: Candidate | None) -> float:
        """prm: the scorer's value (the outcome for terminal nodes); rollout: the
        outcome of the rollout (or of the node itself, when terminal); mixed:
        (1 - rollout_weight) * prm + rollout_weight * outcome."""
        prm = aggregate(tree.step_scores[node], self.aggregation) if node in tree.step_scores else None
        n = tree.nodes[node]
        if n["terminal"]:
            outcome = float(n["correct"]) if self.use_verifier else prm
        elif rollout is not None:
            outcome = float(bool(rollout.correct)) if self.use_verifier else rollout.score
        else:
            outcome = None
        if self.evaluation == "prm":
            return outcome if n["terminal"] else prm
        if self.evaluation == "rollout":
            return outcome
        return (1.0 - self.rollout_weight) * prm + self.rollout_weight * outcome
