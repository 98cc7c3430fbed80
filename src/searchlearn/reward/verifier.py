"""The outcome-supervised verifier trained at every token (Cobbe et al. 2021, "Training
verifiers to solve math word problems"; TinyGSM, Liu et al. 2023).

The same one-logit token-classification model as the PRM, trained on outcome labels
only, but with the solution's correctness at *every* token of the solution, not only
at its end (prm_train.py, target "verifier"). Each prefix thereby learns the chance
that the solution it starts ends right: a value function learned without step
labels or rollouts. It scores like a PRM: the sigmoid at each step's end token.
Its rows are the outcome rows (reward/orm.py), so it costs no labelling at all.
"""

from __future__ import annotations

from searchlearn.reward.prm import PRMScorer


class VerifierScorer(PRMScorer):
    """A trained verifier directory as a StepScorer: each step's score is the value
    the verifier reads at that step's end token."""

    kind = "verifier"
