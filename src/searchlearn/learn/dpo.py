"""DPO on preference pairs mined from search (solution- and/or step-level).

Unlike RFT, DPO also learns from the *failed* samples: each correct solution (or
higher-valued step) is pushed up relative to a wrong one, measured against the
previous round's policy as the frozen reference. TRL's DPOTrainer on the project's
training scaffold (learn/scaffold.py): length-grouped pairs, the hardware's
precision, and the LM head only at completion tokens for policy and reference.
"""

from __future__ import annotations

import tempfile
import time

from searchlearn.formatting import is_complete
from searchlearn.learn import scaffold
from searchlearn.learn.base import LearnInputs, schema_defaults, with_defaults
from searchlearn.learn.lm_head import add_compact_lm_head
from searchlearn.learn.pairs import build_pairs
from searchlearn.problems.base import iter_jsonl

# TRL's DPO loss reads these per-token fields for its logged metrics (entropy,
# logits/chosen, token accuracy); the compact head computes them at completion
# tokens only, without gradient.
POLICY_FIELDS = ("log_probs", "entropy", "mean_logits", "is_top1")


def dpo_defaults() -> dict:
    from searchlearn.config.schema import DPOConfig

    return schema_defaults(DPOConfig)


class DPOLearner:
    """Learner "dpo". `cfg` is the whole `learn` section; this reads `cfg["dpo"]`."""

    name = "dpo"

    def learn(self, inputs: LearnInputs, cfg: dict) -> dict:
        start = time.perf_counter()
        dpo = with_defaults(cfg.get("dpo"), dpo_defaults())
        results = [row for path in inputs.search_paths() for _, row in iter_jsonl(path)]
        pairs, stats = build_pairs(results, dpo["pairs"], dpo["min_margin"], dpo["max_pairs_per_problem"],
                                   inputs.seed)
        metrics = {"dpo.pairs": len(pairs), **{f"dpo.{_stat_name(k)}": v for k, v in stats.items()}}
        sidecar = {"learner": "dpo", "dpo": dpo, "seed": inputs.seed, "base_model": inputs.policy_dir,
                   "reference_model": inputs.reference_dir}
        if not pairs:
            # Nothing to prefer (e.g. every problem all-correct or all-wrong): keep the policy.
            return scaffold.keep_unchanged(inputs.policy_dir, inputs.out_dir, sidecar, metrics)
        with tempfile.TemporaryDirectory(prefix="dpo-work-") as work:
            trainer, curve = _build_trainer(inputs, dpo, pairs, work)
            metrics.update(scaffold.fit(trainer, curve, start))
            metrics.update(summarize_dpo_logs(trainer.state.log_history))
            scaffold.save(trainer, inputs.out_dir, sidecar, metrics)
        return metrics


def _stat_name(key: str) -> str:
    # PairStats' per-level counts read better as dpo.pairs_solution / dpo.pairs_step.
    return f"pairs_{key}" if key in ("solution", "step") else key


def _build_trainer(inputs: LearnInputs, dpo: dict, pairs: list[dict], work: str):
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    scaffold.configure_cpu()
    train = dpo["train"]
    model, tokenizer = scaffold.load_causal_lm(inputs.policy_dir), scaffold.load_tokenizer(inputs.policy_dir)
    # Load the reference explicitly: TRL would otherwise rebuild it from the *policy* path.
    ref_model = scaffold.load_causal_lm(inputs.reference_dir)
    dataset = Dataset.from_list([{k: p[k] for k in ("prompt", "chosen", "rejected")} for p in pairs])
    loss_type = dpo["loss_type"]
    args = scaffold.training_arguments(
        DPOConfig, train, work, inputs.seed, scaffold.planned_steps(len(pairs), train),
        beta=dpo["beta"], loss_type=[loss_type] if isinstance(loss_type, str) else list(loss_type),
        max_length=train["max_length"], include_num_input_tokens_seen="non_padding",
    )
    curve = scaffold.loss_curve()
    trainer = scaffold.grouped(DPOTrainer)(model=model, ref_model=ref_model, args=args, train_dataset=dataset,
                                           processing_class=tokenizer, callbacks=[curve])
    add_compact_lm_head(trainer.model, outputs=POLICY_FIELDS)
    add_compact_lm_head(trainer.accelerator.unwrap_model(trainer.ref_model))
    # TRL appends EOS to every completion; a step that does not finish the solution
    # must not teach the policy to stop after it. (Safe to edit here: reference
    # log-probs are computed per batch, precompute_ref_log_probs is off.)
    trainer.train_dataset = trainer.train_dataset.map(
        drop_eos_unless_complete, fn_kwargs={"eos_id": tokenizer.eos_token_id}, desc="Dropping EOS of unfinished"
    )
    ds = trainer.train_dataset
    trainer.lengths = scaffold.lengths_if_grouped(
        train, [len(p) + max(len(c), len(r)) for p, c, r in zip(ds["prompt_ids"], ds["chosen_ids"], ds["rejected_ids"])])
    return trainer, curve


def drop_eos_unless_complete(example: dict, eos_id: int) -> dict:
    """Strip the EOS id TRL appended to a completion that has no final answer line
    (step-level pairs, truncated samples)."""
    for side in ("chosen", "rejected"):
        ids = example[f"{side}_ids"]
        if len(ids) > 1 and ids[-1] == eos_id and not is_complete(example[side]):
            example[f"{side}_ids"] = ids[:-1]
    return example


def summarize_dpo_logs(log_history: list[dict]) -> dict:
    """DPO's implicit-reward curve ends from Trainer.state.log_history."""
    return {
        **scaffold.first_last(log_history, "rewards/margins", "dpo.reward_margin_first", "dpo.reward_margin_last"),
        **scaffold.first_last(log_history, "rewards/accuracies", "dpo.reward_accuracy_first",
                              "dpo.reward_accuracy_last"),
    }
