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
    # Earlier rounds' search results, newest first, when learn.data=all (ReST-EM style
    # growing data); empty: this round's data only.
    earlier_search_paths: tuple[str, ...] = ()

    def search_paths(self) -> list[str]:
        """The search results a learner trains on: this round's, then earlier ones."""
        return [self.search_path, *self.earlier_search_paths]


class Learner(Protocol):
    """`learn` writes a HF checkpoint to inputs.out_dir and returns small metrics
    (floats/ints) such as train loss, examples used and wall time."""

    name: str

    def learn(self, inputs: LearnInputs, cfg: dict) -> dict: ...


def with_defaults(cfg: dict | None, defaults: dict) -> dict:
    """Merge `cfg` over `defaults` (nested dicts too); unknown keys are typos, so raise.
    Learners take plain dicts (from the flow, a notebook or a test); their defaults
    are the schema dataclasses' (see `schema_defaults`)."""
    cfg = dict(cfg or {})
    unknown = set(cfg) - set(defaults)
    if unknown:
        raise ValueError(f"unknown learner config keys {sorted(unknown)}; expected {sorted(defaults)}")
    merged = {**defaults, **cfg}
    for key, value in defaults.items():
        if isinstance(value, dict):
            merged[key] = with_defaults(cfg.get(key), value)
    return merged


def schema_defaults(schema_cls) -> dict:
    """A config section's defaults as a plain dict, from its schema dataclass."""
    from dataclasses import asdict

    return asdict(schema_cls())
