"""The Learner protocol: turn one round's search data into a new policy checkpoint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class LearnInputs:
    policy_dir: str  # the checkpoint to start from
    reference_dir: str  # previous round's policy (DPO reference / KL anchor)
    search_path: str  # this round's search results (JSONL of SearchResult dicts)
    problems_path: str  # this round's training problems (JSONL of Problem dicts)
    out_dir: str  # where the new checkpoint must be written (atomically)
    seed: int = 0


class Learner(Protocol):
    """`learn` writes a HF checkpoint to inputs.out_dir and returns small metrics
    (floats/ints) such as train loss, examples used and wall time."""

    name: str

    def learn(self, inputs: LearnInputs, cfg: dict) -> dict: ...
