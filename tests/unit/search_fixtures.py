"""A scripted policy and a scripted step scorer for search tests, so every sample and
every score is chosen by hand and expected trees can be worked out on paper."""

from __future__ import annotations

from collections import Counter

from searchlearn.generation.scripted import ScriptedGenerator
from searchlearn.problems.base import Problem
from searchlearn.search.base import SearchBudget

SOLUTION_HEADER = "\nSolution:\n"


def split_prompt(prompt: str) -> tuple[str, str]:
    """build_prompt(question) + partial solution -> (question, partial solution)."""
    head, _, partial = prompt.partition(SOLUTION_HEADER)
    return head.removeprefix("Question: "), partial


class CyclingModel:
    """The "model": for each partial solution it cycles through a scripted list of
    continuations, in call order. Keys of `table` are partial solutions ("" is the
    empty one) or (question, partial) to script one problem only. The generator cuts
    continuations at "\\n" for step calls, so one script serves steps and rollouts."""

    def __init__(self, table: dict, default: str = "The answer is 0.\n"):
        self.table = table
        self.default = default
        self.calls: Counter = Counter()

    def __call__(self, prompt: str, rng) -> str:
        question, partial = split_prompt(prompt)
        options = self.table.get((question, partial), self.table.get(partial))
        if options is None:
            return self.default
        i = self.calls[(question, partial)]
        self.calls[(question, partial)] += 1
        return options[i % len(options)]


def scripted(table: dict, default: str = "The answer is 0.\n") -> ScriptedGenerator:
    return ScriptedGenerator(CyclingModel(table, default))


class TableScorer:
    """StepScorer whose score for a step is values[step text] (else `default`), whatever
    its prefix. Records the batch size of every call."""

    def __init__(self, values: dict[str, float], default: float = 0.5, aggregations=("min", "last")):
        self.values = values
        self.default = default
        self.aggregations = aggregations  # how reranking reads its scores, like a PRM's
        self.calls: list[int] = []

    def score(self, questions, step_lists):
        assert len(questions) == len(step_lists)
        self.calls.append(len(step_lists))
        return [[self.values.get(s, self.default) for s in steps] for steps in step_lists]


def problem(pid: str = "p1", question: str = "Tom has 3 apples and buys 4. How many?", answer: str = "7") -> Problem:
    return Problem(id=pid, question=question, answer=answer)


def budget(**kw) -> SearchBudget:
    base = dict(n=4, temperature=1.0, max_new_tokens=64, max_step_tokens=16, max_steps=4)
    return SearchBudget(**{**base, **kw})


def kept_first_steps(result) -> list[str]:
    """Depth-1 steps that survived beam pruning (visits == 1)."""
    return [n["step"] for n in result.tree if n["depth"] == 1 and n["visits"] == 1]
