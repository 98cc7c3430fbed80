from searchlearn.reward.base import AGGREGATIONS, StepScorer, aggregate

__all__ = ["AGGREGATIONS", "StepScorer", "aggregate"]
