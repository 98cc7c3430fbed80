"""PRM-guided beam search (as in huggingface/search-and-learn), plus the step-wise
machinery DVTS and MCTS reuse: reading one sampled step, a problem's tree of
steps, and expanding/scoring the frontiers of all problems together.

Budget (search-and-learn's convention): every search step, each of `beam_width`
beams samples `expansions` next steps, so a problem spends
beam_width * expansions <= n step samples per step -- n best-of-N samples grown
one step at a time, at most n * max_steps step samples in all. beam_width
defaults (None or 0) to n // expansions. At the first step the root is expanded beam_width
times (it stands for beam_width empty beams), so that step also spends n.

Unlike search-and-learn, which searches one problem at a time, each search step
is ONE generate call and ONE scorer call over every live beam of every problem.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from searchlearn.answers import is_correct
from searchlearn.formatting import build_prompt, is_answer_step, join_steps
from searchlearn.generation.base import Completion, Generator, SamplingParams
from searchlearn.problems.base import Problem
from searchlearn.reward.base import AGGREGATIONS, StepScorer, aggregate
from searchlearn.search.base import Candidate, SearchBudget, SearchResult, tree_node
from searchlearn.search.best_of_n import make_candidate
from searchlearn.search.selection import SELECTIONS, select

STEP_STOP = ("\n",)


@dataclass(frozen=True)
class Step:
    text: str  # stripped, without its "\n"
    num_tokens: int
    terminal: bool  # this step ends the solution


def read_step(completion: Completion) -> Step | None:
    """One sampled step, or None when it is empty (a blank line, or EOS at once):
    an empty step adds nothing to a solution, so it is dropped (its tokens still count)."""
    line, newline, _ = completion.text.partition("\n")
    text = line.strip()
    if not text:
        return None
    # Without a newline the model stopped (EOS) or hit the step token limit; a solution
    # cannot go on from half a line, so the step ends it (search-and-learn does the same).
    terminal = is_answer_step(text) or not newline or completion.finish_reason == "length"
    return Step(text, completion.num_tokens, terminal)


class StepTree:
    """One problem's search tree in the SearchResult.tree schema, plus what the schema
    leaves out: each node's step tokens and scorer step scores, and tokens spent."""

    def __init__(self, problem: Problem, max_steps: int):
        self.problem = problem
        self.max_steps = max_steps
        self.nodes: list[dict] = [tree_node(0, None, "", 0)]
        self.step_tokens: list[int] = [0]
        self.step_scores: dict[int, list[float]] = {}  # node id -> scorer output for its path
        self.rollouts: list[Candidate] = []  # complete solutions that are not tree nodes (MCTS)
        self.tokens = 0  # every generated token for this problem
        self.samples = 0  # step samples drawn (dropped ones included)
        self.dropped = 0  # empty steps thrown away

    def add(self, parent: int, step: Step) -> int:
        depth = self.nodes[parent]["depth"] + 1
        node_id = len(self.nodes)
        # A solution that reaches max_steps without an answer is over: it scores as wrong.
        terminal = step.terminal or depth >= self.max_steps
        self.nodes.append(tree_node(node_id, parent, step.text, depth, terminal=terminal))
        self.step_tokens.append(step.num_tokens)
        if terminal:
            self.nodes[node_id]["correct"] = is_correct(self.solution(node_id), self.problem.answer)
        return node_id

    def path(self, node_id: int) -> list[int]:
        """Node ids from the root's child down to node_id."""
        ids = []
        while node_id:
            ids.append(node_id)
            node_id = self.nodes[node_id]["parent"]
        return ids[::-1]

    def steps(self, node_id: int) -> list[str]:
        return [self.nodes[i]["step"] for i in self.path(node_id)]

    def solution(self, node_id: int) -> str:
        return join_steps(self.steps(node_id))

    def prompt(self, node_id: int) -> str:
        return build_prompt(self.problem.question) + self.solution(node_id)

    def path_tokens(self, node_id: int) -> int:
        return sum(self.step_tokens[i] for i in self.path(node_id))

    def candidate(self, node_id: int, aggregation: str) -> Candidate:
        cand = make_candidate(self.problem, self.solution(node_id), self.path_tokens(node_id))
        if node_id in self.step_scores:
            cand.step_scores = list(self.step_scores[node_id])
            cand.score = aggregate(cand.step_scores, aggregation)
        return cand

    def result(self, algorithm: str, selection: str, aggregation: str, extra: dict) -> SearchResult:
        """All terminal nodes (in creation order), then rollouts, become candidates."""
        terminal = [n["id"] for n in self.nodes if n["terminal"]]
        cands = [self.candidate(i, aggregation) for i in terminal] + self.rollouts
        return SearchResult(
            problem_id=self.problem.id,
            question=self.problem.question,
            reference=self.problem.answer,
            candidates=cands,
            best=select(cands, selection),
            tokens=self.tokens,
            algorithm=algorithm,
            tree=self.nodes,
            extra={"candidate_nodes": terminal + [None] * len(self.rollouts), "step_samples": self.samples,
                   "dropped_steps": self.dropped, **extra},
        )


def expand(
    generator: Generator, requests: Sequence[tuple[StepTree, int]], n: int, budget: SearchBudget
) -> list[list[Step]]:
    """Sample n next steps for every (tree, node) in ONE generate call. Every token,
    dropped steps included, is counted into the tree that asked; returns the kept steps."""
    if not requests:
        return []
    params = SamplingParams(n=n, temperature=budget.temperature, top_p=budget.top_p,
                            max_new_tokens=budget.max_step_tokens, stop=STEP_STOP)
    outputs = generator.generate([tree.prompt(node) for tree, node in requests], params)
    kept = []
    for (tree, _), completions in zip(requests, outputs):
        tree.tokens += sum(c.num_tokens for c in completions)
        tree.samples += len(completions)
        steps = [read_step(c) for c in completions]
        tree.dropped += steps.count(None)
        kept.append([s for s in steps if s is not None])
    return kept


def score_nodes(scorer: StepScorer, items: Sequence[tuple[StepTree, int]]) -> None:
    """Score the partial solution ending at each (tree, node) in ONE scorer call."""
    if not items:
        return
    scores = scorer.score([t.problem.question for t, _ in items], [t.steps(node) for t, node in items])
    for (tree, node), s in zip(items, scores):
        tree.step_scores[node] = list(s)


@dataclass
class Beams:
    """Beams that compete for the same `width` slots: a whole problem in beam search,
    one subtree in DVTS. Nothing outside the group affects which of its beams survive."""

    tree: StepTree
    width: int
    active: list[int]  # nodes to expand next; the root may repeat at the first step
    finished: int = 0
    children: list[int] = field(default_factory=list)  # this step's new nodes

    def keep_best(self, aggregation: str) -> None:
        """Keep the top (width - finished) children; finished ones leave the beam."""
        scores = {c: aggregate(self.tree.step_scores[c], aggregation) for c in self.children}
        # sorted() is stable: equal scores keep creation order, so runs are deterministic.
        ranked = sorted(self.children, key=lambda c: -scores[c])
        self.active, self.children = [], []
        for node in ranked[: self.width - self.finished]:
            self.tree.nodes[node]["visits"] = 1
            if self.tree.nodes[node]["terminal"]:
                self.finished += 1
            else:
                self.active.append(node)


def run_beams(
    groups: Sequence[Beams], generator: Generator, scorer: StepScorer, budget: SearchBudget,
    expansions: int, aggregation: str,
) -> None:
    """Advance every group of every problem one step per iteration, with one generate
    and one scorer call per step for all of them."""
    for group in groups:
        group.tree.nodes[0]["visits"] = 1
    # Nodes at depth max_steps are terminal, so every beam is done after max_steps steps.
    for _ in range(budget.max_steps):
        requests = [(g, node) for g in groups for node in g.active]
        if not requests:
            return
        sampled = expand(generator, [(g.tree, node) for g, node in requests], expansions, budget)
        for (group, node), steps in zip(requests, sampled):
            group.children += [group.tree.add(node, s) for s in steps]
        new = [(g.tree, c) for g in groups for c in g.children]
        score_nodes(scorer, new)
        for tree, node in new:
            tree.nodes[node]["value"] = tree.step_scores[node][-1]
        for group in groups:
            if group.active:
                group.keep_best(aggregation)


def check_common(expansions: int, aggregation: str, selection: str) -> None:
    if expansions < 1:
        raise ValueError(f"expansions must be >= 1, got {expansions}")
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {aggregation!r}; choose one of {sorted(AGGREGATIONS)}")
    if selection not in SELECTIONS:
        raise ValueError(f"unknown selection {selection!r}; choose one of {sorted(SELECTIONS)}")


def require_scorer(algorithm: str, scorer: StepScorer | None) -> None:
    if scorer is None:
        raise ValueError(f"{algorithm} ranks partial solutions with a scorer: configure a PRM")


class BeamSearch:
    """Keep the `beam_width` best partial solutions by scorer, each sampling
    `expansions` next steps per search step, until beam_width solutions finish."""

    name = "beam_search"

    def __init__(self, beam_width: int | None = None, expansions: int = 4, aggregation: str = "last",
                 selection: str = "best"):
        check_common(expansions, aggregation, selection)
        if beam_width is not None and beam_width < 0:
            raise ValueError(f"beam_width must be >= 1 (0 or None: n // expansions), got {beam_width}")
        self.beam_width = beam_width
        self.expansions = expansions
        self.aggregation = aggregation
        self.selection = selection

    @classmethod
    def from_config(cls, search_cfg: dict) -> "BeamSearch":
        return cls(**(search_cfg.get(cls.name) or {}))

    needs_scorer = True  # it ranks partial solutions

    def fits(self, budget: SearchBudget) -> bool:
        try:
            return self.width(budget.n) >= 1
        except ValueError:
            return False

    def width(self, n: int) -> int:
        width = self.beam_width or n // self.expansions
        if width < 1 or width * self.expansions > n:
            raise ValueError(
                f"beam search samples beam_width * expansions steps per step, which must be in "
                f"[1, n]: beam_width={width}, expansions={self.expansions}, n={n}"
            )
        return width

    def search(
        self, problems: Sequence[Problem], generator: Generator, scorer: StepScorer | None, budget: SearchBudget
    ) -> list[SearchResult]:
        require_scorer(self.name, scorer)
        width = self.width(budget.n)
        trees = [StepTree(p, budget.max_steps) for p in problems]
        groups = [Beams(tree, width, active=[0] * width) for tree in trees]
        run_beams(groups, generator, scorer, budget, self.expansions, self.aggregation)
        extra = {"beam_width": width, "expansions": self.expansions}
        return [t.result(self.name, self.selection, self.aggregation, extra) for t in trees]
