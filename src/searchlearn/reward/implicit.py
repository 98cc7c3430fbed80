"""The implicit PRM at inference (Yuan et al. 2024, "Free process rewards without
process labels").

An implicit PRM is a causal LM πθ trained from a frozen reference πref (the model it
started from) on outcome labels only, with the outcome reward parameterised as a
log-likelihood ratio: the loss is BCE(σ(β·Σ_t log πθ(y_t|y<t)/πref(y_t|y<t)), outcome)
over the solution's tokens (reward/implicit_train.py). Under that parameterisation
the partial sum up to token t, q_t = Σ_{i<=t} log πθ(y_i|y<i)/πref(y_i|y<i), is the
(scaled) Q value of the prefix, so process rewards come for free: step k's value
here is σ(β·q_k), q_k summed up to the step's end token (the same position a PRM
reads, prm.step_end_positions). At the last step it is the trained outcome
probability itself.

Scoring runs both models over every candidate (two backbone forwards) and projects
the LM head only at the solution's tokens (learn/lm_head.py). The reference's path
is saved in the model's prm_config.json (`ref_dir`).

`reward: confidence` (prm_config.json) is the reference-free, length-normalised
variant (SimPO's reward, Meng et al. 2024, read per prefix): step k's value is
σ((ℓ̄_k − center)/scale), ℓ̄_k the mean log πθ over the solution's tokens up to step
k's end, `center` and `scale` the mean and spread of the initial model's ℓ̄ over its
training steps. Why: the log-ratio is 0 for every step at initialisation, so what the
policy already knows (its own confidence, which ranks a problem's candidates better
than any trained model here: bench/policy_confidence.py) is thrown away and must be
relearnt from a few thousand labels; this parameterisation starts from it. Scoring
then needs no reference (one backbone forward).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from searchlearn.reward.prm import (
    PRMScorer,
    check_kind,
    length_batches,
    pad_batch,
    pad_token_id,
    read_prm_config,
    scoring_dtype,
)

IGNORE = -100
# prm.<kind>.reward: the step value's parameterisation (module docstring).
REWARDS = ("confidence", "log_ratio")


def solution_labels(ids, lengths: Sequence[int], starts: Sequence[int]):
    """(B, T) next-token labels for the fused LM head: each sequence's own token from
    its first solution token to its end, IGNORE on the prompt and the padding."""
    labels = ids.clone()
    for i, (n, s) in enumerate(zip(lengths, starts)):
        labels[i, :s] = IGNORE
        labels[i, n:] = IGNORE
    return labels


def token_log_probs(model, ids, mask, labels):
    """(B, T-1) log-probs of each labelled next token (0 where unlabelled), in fp32;
    `model` carries the compact LM head (learn.lm_head.add_compact_lm_head)."""
    out = model(input_ids=ids, attention_mask=mask, labels=labels, fused_lm_head=True)
    return out.log_probs.float()


def step_values(log_ratio, positions: Sequence[Sequence[int | None]], beta: float) -> list[list[float | None]]:
    """σ(β·q_k) for each step end position p_k of each row, q_k the sum of the
    per-token log-ratios up to token p_k. `log_ratio` is (B, T-1) with column t
    holding token t+1's log πθ/πref (0 where unlabelled); None where a step has no
    position (truncated) or ends before any token was predicted."""
    import torch

    q = log_ratio.cumsum(-1)  # q[:, t]: the ratio summed over tokens 1..t+1
    values = torch.sigmoid(beta * q)
    return [[None if p is None or p < 1 else float(values[i, p - 1]) for p in row]
            for i, row in enumerate(positions)]


def confidence_values(log_probs, positions: Sequence[Sequence[int | None]], starts: Sequence[int],
                      center: float, scale: float) -> list[list[float | None]]:
    """σ((ℓ̄_k − center)/scale) for each step end position p_k of each row, ℓ̄_k the
    mean of `log_probs` (B, T-1; column t holds token t+1's log πθ, 0 where unlabelled)
    over the solution's tokens start..p_k. None as in step_values."""
    import torch

    q = log_probs.cumsum(-1)
    values: list[list[float | None]] = []
    for i, (row, start) in enumerate(zip(positions, starts)):
        ends = [p for p in row if p is not None and p >= 1]
        means = q[i, torch.tensor(ends, dtype=torch.long) - 1] / torch.tensor([p - start + 1 for p in ends]) \
            if ends else torch.zeros(0)
        it = iter(torch.sigmoid((means - center) / scale).tolist())
        values.append([None if p is None or p < 1 else next(it) for p in row])
    return values


def implicit_scores(policy, ref, encoded: list[tuple[list[int], list[int | None], int]], pad_id: int,
                    batch_size: int, beta: float,
                    confidence: tuple[float, float] | None = None) -> list[list[float | None]]:
    """Step values of already-encoded solutions (prm.encode_with_starts), batched by
    length, longest first (prm.length_batches): the log-ratio's (step_values), or with
    `confidence` = (center, scale) the reference-free ones (confidence_values; `ref`
    unused)."""
    import torch

    device = next(policy.parameters()).device
    out: list[list[float | None]] = [[] for _ in encoded]
    with torch.inference_mode():
        for chunk in length_batches([len(e[0]) for e in encoded], batch_size):
            ids, mask = pad_batch([encoded[i][0] for i in chunk], pad_id)
            labels = solution_labels(ids, [len(encoded[i][0]) for i in chunk], [encoded[i][2] for i in chunk])
            ids, mask, labels = ids.to(device), mask.to(device), labels.to(device)
            logp = token_log_probs(policy, ids, mask, labels).cpu()
            positions = [encoded[i][1] for i in chunk]
            if confidence is not None:  # reference-free: (center, scale)
                values = confidence_values(logp, positions, [encoded[i][2] for i in chunk], *confidence)
            else:
                values = step_values(logp - token_log_probs(ref, ids, mask, labels).cpu(), positions, beta)
            for row, i in enumerate(chunk):
                out[i] = values[row]
    return out


def check_reward(reward: str) -> str:
    if reward not in REWARDS:
        raise ValueError(f"implicit PRM reward {reward!r} not among {sorted(REWARDS)}")
    return reward


def reward_of(config: dict) -> str:
    """The model's reward parameterisation (REWARDS); models from before the option are
    log-ratio ones."""
    return check_reward(config.get("reward", "log_ratio"))


def load_for_scoring(model_dir: str | Path, dtype):
    """A causal LM for scoring: frozen, in `dtype`, with the compact LM head."""
    from transformers import AutoModelForCausalLM

    from searchlearn.learn.lm_head import add_compact_lm_head

    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=dtype).eval().requires_grad_(False)
    add_compact_lm_head(model)
    return model


class ImplicitPRMScorer(PRMScorer):
    """A trained implicit PRM directory (its reference found through prm_config.json)
    as a StepScorer."""

    kind = "implicit"

    def __init__(self, prm_dir: str | Path, batch_size: int = 32, device: str | None = None,
                 max_length: int | None = None, precision: str = "auto"):
        import torch
        from transformers import AutoTokenizer

        from searchlearn.memory import keep_heap

        config = read_prm_config(prm_dir)
        check_kind(config, self.kind, prm_dir)
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = scoring_dtype(precision)
        # The reference-free reward reads one model; the log-ratio needs the reference too.
        dirs = (prm_dir,) if reward_of(config) == "confidence" else (prm_dir, config["ref_dir"])
        policy, *ref = (load_for_scoring(d, dtype).to(device) for d in dirs)
        keep_heap()
        self.ref = ref[0] if ref else None
        self._setup(policy, AutoTokenizer.from_pretrained(prm_dir), config, batch_size, max_length)

    @classmethod
    def from_models(cls, policy, ref, tokenizer, config: dict, batch_size: int = 32):
        """A scorer over models in memory (the trainer's, for its held-out evaluation);
        both must carry the compact LM head."""
        scorer = cls.from_model(policy, tokenizer, config, batch_size)
        scorer.ref = ref
        return scorer

    def _raw_scores(self, encoded):
        c = self.config
        confidence = (float(c["center"]), float(c["scale"])) if reward_of(c) == "confidence" else None
        return implicit_scores(self.model, self.ref, encoded, pad_token_id(self.tokenizer), self.batch_size,
                               float(c["beta"]), confidence)


class ImplicitStepPRMScorer(ImplicitPRMScorer):
    """An implicit PRM trained on step labels (kind implicit_step,
    implicit_train.train_implicit with targets="steps"): scored exactly as the
    outcome-trained one, σ(β·q_k) at each step's end."""

    kind = "implicit_step"
