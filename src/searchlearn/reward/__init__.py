"""Reward models behind the StepScorer protocol, by config name.

Importing this package stays cheap: scorer modules import torch/transformers
only when a scorer is constructed.
"""

from searchlearn.reward.base import AGGREGATIONS, StepScorer, aggregate
from searchlearn.reward.implicit import ImplicitPRMScorer, ImplicitStepPRMScorer
from searchlearn.reward.orm import ORMScorer
from searchlearn.reward.prm import PRMScorer
from searchlearn.reward.verifier import VerifierScorer

# Config name (prm.kind) -> StepScorer class; each takes (path, batch_size=...) and
# says how reranking aggregates its step scores (`aggregations`). The trainers are
# in reward/trainers.py.
SCORERS: dict[str, type] = {
    "prm": PRMScorer,
    "orm": ORMScorer,
    "verifier": VerifierScorer,
    "implicit": ImplicitPRMScorer,
    "implicit_step": ImplicitStepPRMScorer,
}


def load_scorer(kind: str, path: str, **kwargs) -> StepScorer:
    """Load a trained reward model directory as a StepScorer (`kind`: a SCORERS name)."""
    try:
        cls = SCORERS[kind]
    except KeyError:
        raise ValueError(f"unknown scorer {kind!r}; choose one of {sorted(SCORERS)}") from None
    return cls(path, **kwargs)


__all__ = ["AGGREGATIONS", "SCORERS", "ImplicitPRMScorer", "ImplicitStepPRMScorer", "ORMScorer", "PRMScorer",
           "StepScorer", "VerifierScorer", "aggregate", "load_scorer"]
