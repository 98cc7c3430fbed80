"""Best-of-N: sample N full solutions per problem in one batched call, then pick
one by majority vote, by scorer (vanilla / weighted BoN), or take the first."""

from __future__ import annotations

from typing import Sequence

from searchlearn.answers import extract_answer, is_correct
from searchlearn.formatting import build_prompt, join_steps, split_steps
from searchlearn.generation.base import Generator, SamplingParams
from searchlearn.problems.base import Problem
from searchlearn.reward.base import StepScorer, aggregate
from searchlearn.search.base import Candidate, SearchBudget, SearchResult
from searchlearn.search.selection import SCORED_SELECTIONS, select


def make_candidate(problem: Problem, text: str, num_tokens: int) -> Candidate:
    """Trim a raw completion to its steps (up to the answer line) and verify it."""
    trimmed = join_steps(split_steps(text))
    return Candidate(
        text=trimmed,
        num_tokens=num_tokens,
        answer=extract_answer(trimmed),
        correct=is_correct(trimmed, problem.answer),
    )


def score_candidates(
    problems: Sequence[Problem], groups: Sequence[Sequence[Candidate]], scorer: StepScorer, aggregation: str
) -> None:
    """Fill in step_scores and score for every candidate, in one batched scorer call."""
    questions, step_lists, flat = [], [], []
    for problem, cands in zip(problems, groups):
        for c in cands:
            questions.append(problem.question)
            step_lists.append(split_steps(c.text) or [""])
            flat.append(c)
    if not flat:
        return
    for c, scores in zip(flat, scorer.score(questions, step_lists)):
        c.step_scores = list(scores)
        c.score = aggregate(scores, aggregation)


class BestOfN:
    name = "best_of_n"

    def __init__(self, selection: str = "majority", aggregation: str = "min"):
        self.selection = selection
        self.aggregation = aggregation

    @classmethod
    def from_config(cls, search_cfg: dict) -> "BestOfN":
        """Best-of-N reads the top-level keys of the `search:` section."""
        return cls(selection=search_cfg["selection"], aggregation=search_cfg["aggregation"])

    @property
    def needs_scorer(self) -> bool:
        return self.selection in SCORED_SELECTIONS

    def fits(self, budget: SearchBudget) -> bool:
        return budget.n >= 1

    def search(
        self,
        problems: Sequence[Problem],
        generator: Generator,
        scorer: StepScorer | None,
        budget: SearchBudget,
    ) -> list[SearchResult]:
        if self.needs_scorer and scorer is None:
            raise ValueError(f"best_of_n selection {self.selection!r} needs a scorer (PRM or ORM)")
        params = SamplingParams(
            n=budget.n, temperature=budget.temperature, top_p=budget.top_p, max_new_tokens=budget.max_new_tokens
        )
        outputs = generator.generate([build_prompt(p.question) for p in problems], params)
        groups = [[make_candidate(p, c.text, c.num_tokens) for c in outs] for p, outs in zip(problems, outputs)]
        if scorer is not None:
            score_candidates(problems, groups, scorer, self.aggregation)
        return [
            SearchResult(
                problem_id=p.id,
                question=p.question,
                reference=p.answer,
                candidates=cands,
                best=select(cands, self.selection),
                tokens=sum(c.num_tokens for c in cands),
                algorithm=self.name,
            )
            for p, cands in zip(problems, groups)
        ]
