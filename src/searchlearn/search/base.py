"""The search interface: `search(problems, generator, scorer, budget) -> results`.

Every algorithm (best-of-N, beam, DVTS, MCTS) returns the same SearchResult per
problem, so data export (RFT traces, PRM step values, preference pairs) and
evaluation never care which algorithm ran.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Protocol, Sequence

from searchlearn.generation.base import Generator
from searchlearn.problems.base import Problem
from searchlearn.reward.base import StepScorer


@dataclass(frozen=True)
class SearchBudget:
    """How much a search may spend per problem.

    `n` is the compute unit used to compare algorithms (BoN's N). What it bounds:
    - best_of_n: exactly n full samples per problem;
    - beam_search / dvts: at most n step samples per problem per search step
      (beam_width * expansions, resp. subtrees * expansions, <= n), so at most
      n * max_steps step samples in all: n BoN samples grown one step at a time;
    - mcts: at most n * max_new_tokens generated tokens per problem (the most
      best-of-n can spend), rollouts included.
    """

    n: int = 8
    temperature: float = 0.8
    top_p: float = 1.0
    max_new_tokens: int = 256  # per full solution
    max_step_tokens: int = 64  # per step, for step-wise searches
    max_steps: int = 8

    @classmethod
    def from_config(cls, search_cfg: dict, n: int | None = None) -> "SearchBudget":
        """The budget of a `search:` config section (plain dict); `n` overrides its N."""
        keys = ("temperature", "top_p", "max_new_tokens", "max_step_tokens", "max_steps")
        return cls(n=search_cfg["n"] if n is None else n, **{k: search_cfg[k] for k in keys})


@dataclass
class Candidate:
    text: str  # the completion after the prompt: steps joined with "\n"
    num_tokens: int
    answer: str | None = None  # parsed final answer, None if none was given
    correct: bool | None = None  # against the reference; never used for test-time selection
    score: float | None = None  # aggregated scorer value, if a scorer ran
    step_scores: list[float] | None = None

    @classmethod
    def from_dict(cls, d: dict) -> "Candidate":
        return cls(**d)


@dataclass
class SearchResult:
    """One problem's search outcome.

    `candidates` are all complete solutions the search produced, each verified
    (`correct`); `best` is the one the algorithm's selection picked (never using
    `correct`). `tokens` counts every generated token for this problem, including
    pruned, dropped and rollout samples.

    `tree` (step-wise searches only; None for best-of-N) is a list of node dicts,
    where `tree[i]["id"] == i` and a parent always precedes its children:

        {"id": int, "parent": int | None, "step": str, "depth": int,
         "value": float | None, "visits": int, "prior": float | None,
         "terminal": bool, "correct": bool | None}

    - the root is id 0, parent None, step "", depth 0;
    - `step` is one stripped step line without its "\n"; a node's partial
      solution is `join_steps` of the steps on its path from the root (root
      excluded), and its prompt is `build_prompt(question)` + that text;
    - `value`: MCTS: the mean backed-up value Q; beam/DVTS: the scorer's score of
      this step given its prefix; None if never evaluated;
    - `visits`: MCTS: backed-up evaluations N; beam/DVTS: 1 if the node was kept
      in a beam (or is the root), 0 if it was pruned;
    - `prior`: MCTS: the PUCT prior P (None for the root); beam/DVTS: None;
    - `terminal`: the step ends the solution (answer line, end of text, step cut
      at the token limit, or max_steps reached); `correct` is the verifier's
      verdict for terminal nodes and None otherwise.
    """

    problem_id: str
    question: str
    reference: str
    candidates: list[Candidate]
    best: int | None  # index into candidates of the selected solution
    tokens: int  # every token generated for this problem, scorer calls excluded
    algorithm: str = ""
    tree: list[dict] | None = None  # schema in the class docstring
    extra: dict = field(default_factory=dict)

    @property
    def best_candidate(self) -> Candidate | None:
        return None if self.best is None else self.candidates[self.best]

    @property
    def solved(self) -> bool:
        best = self.best_candidate
        return bool(best and best.correct)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SearchResult":
        d = dict(d)
        d["candidates"] = [Candidate.from_dict(c) for c in d["candidates"]]
        return cls(**d)


def tree_node(
    id: int, parent: int | None, step: str, depth: int, *, value: float | None = None, visits: int = 0,
    prior: float | None = None, terminal: bool = False, correct: bool | None = None,
) -> dict:
    """A node dict in the SearchResult.tree schema (the one place that spells it out)."""
    return {"id": id, "parent": parent, "step": step, "depth": depth, "value": value, "visits": visits,
            "prior": prior, "terminal": terminal, "correct": correct}


def node_path(tree: Sequence[dict], node_id: int) -> list[dict]:
    """The nodes from the root's child down to `node_id` (the root itself excluded)."""
    by_id = {n["id"]: n for n in tree}
    path = []
    while by_id[node_id]["parent"] is not None:
        path.append(by_id[node_id])
        node_id = by_id[node_id]["parent"]
        if len(path) > len(by_id):
            raise ValueError("search tree has a cycle")
    return path[::-1]


class SearchAlgorithm(Protocol):
    """An algorithm knows its own config section and what it needs to run."""

    name: str
    needs_scorer: bool  # whether search() needs a StepScorer with these settings

    @classmethod
    def from_config(cls, search_cfg: dict) -> "SearchAlgorithm":
        """An instance from the `search:` config section (a plain dict)."""
        ...

    def fits(self, budget: "SearchBudget") -> bool:
        """Whether these settings can run within `budget` (tree searches need room for one step)."""
        ...

    def search(
        self,
        problems: Sequence[Problem],
        generator: Generator,
        scorer: StepScorer | None,
        budget: SearchBudget,
    ) -> list[SearchResult]: ...
