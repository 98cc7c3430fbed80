"""Policy learners, selected by `learn.algorithm`."""

from searchlearn.learn.base import Learner, LearnInputs
from searchlearn.learn.dpo import DPOLearner
from searchlearn.learn.grpo import GRPOLearner
from searchlearn.learn.rft import RejectionSamplingFT

# Config name -> implementation. Modules import TRL lazily, so this is cheap.
LEARNERS: dict[str, type] = {
    "rft": RejectionSamplingFT,
    "dpo": DPOLearner,
    "grpo": GRPOLearner,
}

__all__ = ["LEARNERS", "DPOLearner", "GRPOLearner", "LearnInputs", "Learner", "RejectionSamplingFT"]
