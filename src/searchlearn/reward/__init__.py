"""Reward models behind the StepScorer protocol, by config name.

Importing this package stays cheap: scorer modules import torch/transformers
only when a scorer is constructed.
"""

from searchlearn.reward.base import AGGREGATIONS, StepScorer, aggregate
from searchlearn.reward.orm import ORMScorer
from searchlearn.reward.prm import PRMScorer

# Config name -> StepScorer class; each takes (path, batch_size=...).
SCORERS: dict[str, type] = {
    "prm": PRMScorer,
    "orm": ORMScorer,
}


def load_scorer(kind: str, path: str, **kwargs) -> StepScorer:
    """Load a trained reward model directory as a StepScorer (`kind`: prm | orm)."""
    try:
        cls = SCORERS[kind]
    except KeyError:
        raise ValueError(f"unknown scorer {kind!r}; choose one of {sorted(SCORERS)}") from None
    return cls(path, **kwargs)


__all__ = ["AGGREGATIONS", "SCORERS", "ORMScorer", "PRMScorer", "StepScorer", "aggregate", "load_scorer"]
