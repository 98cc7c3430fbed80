"""Policy learners, selected by `learn.algorithm`."""

from searchlearn.learn.base import Learner, LearnInputs
from searchlearn.learn.rft import RejectionSamplingFT

# Config name -> implementation. Modules import TRL lazily, so this is cheap.
LEARNERS: dict[str, type] = {
    "rft": RejectionSamplingFT,
}

__all__ = ["LEARNERS", "LearnInputs", "Learner", "RejectionSamplingFT"]
