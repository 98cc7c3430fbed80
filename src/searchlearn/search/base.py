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

    `n` is the compute unit used to compare algorithms: best-of-N draws n full
    samples; tree searches size their beams/iterations so that they spend about
    n samples' worth of tokens.
    """

    n: int = 8
    temperature: float = 0.8
    top_p: float = 1.0
    max_new_tokens: int = 256  # per full solution
    max_step_tokens: int = 64  # per step, for step-wise searches
    max_steps: int = 8


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
    problem_id: str
    question: str
    reference: str
    candidates: list[Candidate]
    best: int | None  # index into candidates of the selected solution
    tokens: int  # every token generated for this problem, scorer calls excluded
    algorithm: str = ""
    # Optional search tree: a list of node dicts {id, parent, step, value, visits, ...}.
    tree: list[dict] | None = None
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


class SearchAlgorithm(Protocol):
    name: str

    def search(
        self,
        problems: Sequence[Problem],
        generator: Generator,
        scorer: StepScorer | None,
        budget: SearchBudget,
    ) -> list[SearchResult]: ...
