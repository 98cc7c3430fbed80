"""DPO on preference pairs mined from search (solution- and/or step-level).

Unlike RFT, DPO also learns from the *failed* samples: each correct solution (or
higher-valued step) is pushed up relative to a wrong one, measured against the
previous round's policy as the frozen reference.

The training helpers at the bottom (config defaults, fp32 loading, saving with
sidecars) are shared with grpo.py.
"""

from __future__ import annotations

import functools
import time
from dataclasses import asdict

from searchlearn.formatting import is_complete
from searchlearn.learn.base import LearnInputs
from searchlearn.learn.distributed import copy_unchanged, save_trained, write_sidecars
from searchlearn.learn.pairs import build_pairs
from searchlearn.learn.training_args import training_kwargs
from searchlearn.problems.base import iter_jsonl


def dpo_defaults() -> dict:
    """The `learn.dpo` section's defaults (mirrors the proposed schema dataclass)."""
    return {
        "pairs": "both",  # solution | step | both
        "min_margin": 0.2,  # step pairs: smallest value gap between siblings
        "max_pairs_per_problem": 4,  # per level; 0 = no cap
        "beta": 0.1,
        "loss_type": "sigmoid",
        "train": train_defaults(learning_rate=1e-6, batch_size=8),
    }


class DPOLearner:
    """Learner "dpo". `cfg` is the whole `learn` section; this reads `cfg["dpo"]`."""

    name = "dpo"

    def learn(self, inputs: LearnInputs, cfg: dict) -> dict:
        start = time.perf_counter()
        dpo = with_defaults(cfg.get("dpo"), dpo_defaults())
        results = [row for _, row in iter_jsonl(inputs.search_path)]
        pairs, stats = build_pairs(results, dpo["pairs"], dpo["min_margin"], dpo["max_pairs_per_problem"],
                                   inputs.seed)
        metrics = {"dpo.pairs": len(pairs), **{f"dpo.{_stat_name(k)}": v for k, v in stats.items()}}
        sidecar = {"learner": "dpo", "dpo": dpo, "seed": inputs.seed, "base_model": inputs.policy_dir,
                   "reference_model": inputs.reference_dir}
        if not pairs:
            # Nothing to prefer (e.g. every problem all-correct or all-wrong): keep the policy.
            return finish(inputs, sidecar, metrics, start)
        trainer = _train(inputs, dpo, pairs)
        metrics.update(summarize_dpo_logs(trainer.state.log_history))
        return finish(inputs, sidecar, metrics, start, trainer)


def _stat_name(key: str) -> str:
    # PairStats' per-level counts read better as dpo.pairs_solution / dpo.pairs_step.
    return f"pairs_{key}" if key in ("solution", "step") else key


def _train(inputs: LearnInputs, dpo: dict, pairs: list[dict]):
    import tempfile

    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    model, tokenizer = load_policy(inputs.policy_dir)
    # Load the reference explicitly: TRL would otherwise rebuild it from the *policy* path.
    ref_model, _ = load_policy(inputs.reference_dir, with_tokenizer=False)
    dataset = Dataset.from_list([{k: p[k] for k in ("prompt", "chosen", "rejected")} for p in pairs])
    loss_type = dpo["loss_type"]
    with tempfile.TemporaryDirectory(prefix="dpo-work-") as work:
        args = DPOConfig(
            **training_kwargs(dpo["train"], work, inputs.seed),
            beta=dpo["beta"],
            loss_type=[loss_type] if isinstance(loss_type, str) else list(loss_type),
            max_length=dpo["train"]["max_length"],
        )
        trainer = DPOTrainer(model=model, ref_model=ref_model, args=args, train_dataset=dataset,
                             processing_class=tokenizer, callbacks=[log_final_step_callback()()])
        # TRL appends EOS to every completion; a step that does not finish the solution
        # must not teach the policy to stop after it. (Safe to edit here: reference
        # log-probs are computed per batch, precompute_ref_log_probs is off.)
        trainer.train_dataset = trainer.train_dataset.map(
            drop_eos_unless_complete, fn_kwargs={"eos_id": tokenizer.eos_token_id}, desc="Dropping EOS of unfinished"
        )
        trainer.train()
    return trainer


def drop_eos_unless_complete(example: dict, eos_id: int) -> dict:
    """Strip the EOS id TRL appended to a completion that has no final answer line
    (step-level pairs, truncated samples)."""
    for side in ("chosen", "rejected"):
        ids = example[f"{side}_ids"]
        if len(ids) > 1 and ids[-1] == eos_id and not is_complete(example[side]):
            example[f"{side}_ids"] = ids[:-1]
    return example


def summarize_dpo_logs(log_history: list[dict]) -> dict:
    """First/last train loss and DPO implicit-reward stats from Trainer.state.log_history."""
    return {
        **first_last(log_history, "loss", "train.first_loss", "train.last_loss"),
        **first_last(log_history, "rewards/margins", "dpo.reward_margin_first", "dpo.reward_margin_last"),
        **first_last(log_history, "rewards/accuracies", "dpo.reward_accuracy_first", "dpo.reward_accuracy_last"),
    }


# --- shared training helpers (also used by grpo.py) --------------------------------------


def train_defaults(**overrides) -> dict:
    from searchlearn.config.schema import TrainConfig

    return {**asdict(TrainConfig()), **overrides}


def with_defaults(cfg: dict | None, defaults: dict) -> dict:
    """Merge `cfg` over `defaults` (nested dicts too); unknown keys are typos, so raise."""
    cfg = dict(cfg or {})
    unknown = set(cfg) - set(defaults)
    if unknown:
        raise ValueError(f"unknown learner config keys {sorted(unknown)}; expected {sorted(defaults)}")
    merged = {**defaults, **cfg}
    for key, value in defaults.items():
        if isinstance(value, dict):
            merged[key] = with_defaults(cfg.get(key), value)
    return merged


@functools.cache
def log_final_step_callback():
    """A TrainerCallback class (built on first use: no transformers import at module
    load) that forces a log at the last step, so "last" metrics are the final step's
    even when the run is shorter than logging_steps."""
    from transformers import TrainerCallback

    class LogFinalStep(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step >= state.max_steps:
                control.should_log = True

    return LogFinalStep


def load_policy(path: str, with_tokenizer: bool = True):
    """(fp32 causal LM, tokenizer or None) from a HF directory."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(path) if with_tokenizer else None
    if tokenizer is not None and tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def finish(inputs: LearnInputs, sidecar: dict, metrics: dict, start: float, trainer=None) -> dict:
    """Record steps, processes (the data-parallel world the Trainer ran in) and wall
    time, then save the trained policy, or, when there was nothing to train on
    (trainer None), copy the input policy unchanged."""
    steps = trainer.state.global_step if trainer is not None else 0
    processes = trainer.accelerator.num_processes if trainer is not None else 0
    metrics.update({"train.steps": steps, "train.processes": processes,
                    "train.wall_s": round(time.perf_counter() - start, 3)})
    if trainer is None:
        copy_unchanged(inputs.policy_dir, inputs.out_dir, sidecar, metrics)
    else:
        save_trained(trainer, inputs.out_dir, lambda tmp: write_sidecars(tmp, sidecar, metrics))
    return metrics


def first_last(log_history: list[dict], key: str, first_name: str, last_name: str) -> dict:
    """The first and last logged values of `key` under the given names (none logged: {})."""
    values = [row[key] for row in log_history if row.get(key) is not None]
    return {first_name: float(values[0]), last_name: float(values[-1])} if values else {}
