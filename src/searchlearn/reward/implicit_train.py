"""Train an implicit PRM (reward/implicit.py) on outcome rows, on the training scaffold.

The model is the policy itself (a causal LM), trained on each solution's outcome
with the loss BCE(σ(β·(Σ_t log πθ(y_t) − Σ_t log πref(y_t))), outcome), the sums over
the solution's tokens (Yuan et al. 2024). πref is frozen, so its sums are computed
once, before training, and every step runs one forward and backward of πθ, with the
LM head only at the solution's tokens (learn/lm_head.py).

πref is the model the first implicit PRM started from: warm-starting from an earlier
implicit PRM keeps that one's reference (its prm_config.json `ref_dir`), so the
rounds keep one reward scale.
"""

from __future__ import annotations

import copy
import json
import tempfile
import time
from pathlib import Path
from typing import Sequence

from searchlearn.learn import scaffold
from searchlearn.learn.distributed import is_main_process
from searchlearn.reward.implicit import ImplicitPRMScorer, solution_labels, token_log_probs
from searchlearn.reward.prm import (PRM_CONFIG, encode_with_starts, length_batches, pad_batch, pad_token_id,
                                    read_prm_config)
from searchlearn.reward.prm_train import evaluate_reward_model, resolve_train_cfg

# Batch size for the reference's one pass over the training data (inference only).
REFERENCE_BATCH = 32


def build_examples(tokenizer, rows: Sequence[dict], max_length: int) -> tuple[list[dict], dict]:
    """{input_ids, start, outcome} per outcome row: the tokens up to the last step's
    end, the first solution token, and the solution's correctness (its last label).
    A row whose last step does not fit max_length is dropped (its outcome would be
    credited to a cut solution)."""
    examples, counts = [], {"rows": len(rows), "examples": 0, "dropped_rows": 0}
    encoded = encode_with_starts(tokenizer, [r["question"] for r in rows], [r["steps"] for r in rows], max_length)
    for row, (ids, positions, start) in zip(rows, encoded):
        last = positions[-1] if positions else None
        if last is None or last < start:
            counts["dropped_rows"] += 1
            continue
        examples.append({"input_ids": ids[: last + 1], "start": start, "outcome": float(row["labels"][-1])})
    counts["examples"] = len(examples)
    return examples, counts


def collate(batch: Sequence[dict], pad_id: int) -> dict:
    import torch

    ids, mask = pad_batch([b["input_ids"] for b in batch], pad_id)
    return {"input_ids": ids, "attention_mask": mask,
            "labels": solution_labels(ids, [len(b["input_ids"]) for b in batch], [b["start"] for b in batch]),
            "outcome": torch.tensor([b["outcome"] for b in batch]),
            "ref_logp": torch.tensor([b["ref_logp"] for b in batch])}


def reference_log_probs(ref, examples: list[dict], pad_id: int) -> list[float]:
    """Σ_t log πref(y_t) over each example's solution tokens, batched by length,
    under the same autocast as training (so πθ = πref gives a zero margin at step 0)."""
    import torch

    out = [0.0] * len(examples)
    device = next(ref.parameters()).device
    bf16 = scaffold.resolve_precision("auto") == "bf16"
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        for indices in length_batches([len(e["input_ids"]) for e in examples], REFERENCE_BATCH):
            chunk = [examples[i] for i in indices]
            batch = {k: v.to(device) for k, v in collate([{**e, "ref_logp": 0.0} for e in chunk], pad_id).items()}
            sums = token_log_probs(ref, batch["input_ids"], batch["attention_mask"], batch["labels"]).sum(-1)
            for i, s in zip(indices, sums.tolist()):
                out[i] = s
    return out


def implicit_loss(policy_logp, ref_logp, outcome, beta: float):
    """BCE of σ(β·(log πθ(y) − log πref(y))) against the outcome, per solution, averaged."""
    import torch.nn.functional as F

    return F.binary_cross_entropy_with_logits(beta * (policy_logp - ref_logp), outcome.float())


def _trainer_class(beta: float):
    from transformers import Trainer

    class ImplicitPRMTrainer(scaffold.grouped(Trainer)):
        loss_is_scaled_for_ga = False  # a per-micro-batch mean; Trainer divides by grad_accum

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            outcome, ref_logp, labels = inputs.pop("outcome"), inputs.pop("ref_logp"), inputs.pop("labels")
            logp = token_log_probs(model, inputs["input_ids"], inputs["attention_mask"], labels).sum(-1)
            loss = implicit_loss(logp, ref_logp, outcome, beta)
            return (loss, None) if return_outputs else loss

    return ImplicitPRMTrainer


def load_models(init_dir: str | Path):
    """(policy, frozen reference, tokenizer, ref_dir, init_kind), both models with the
    compact LM head. From a causal-LM checkpoint the reference is a copy of it; from
    an earlier implicit PRM, that one's reference."""
    import torch

    from searchlearn.learn.lm_head import add_compact_lm_head

    warm = (Path(init_dir) / PRM_CONFIG).is_file()
    policy, tokenizer = scaffold.load_causal_lm(init_dir), scaffold.load_tokenizer(init_dir)
    ref_dir = read_prm_config(init_dir)["ref_dir"] if warm else str(init_dir)
    ref = scaffold.load_causal_lm(ref_dir) if warm else copy.deepcopy(policy)
    ref.eval().requires_grad_(False).to("cuda" if torch.cuda.is_available() else "cpu")  # where Trainer puts πθ
    add_compact_lm_head(policy)
    add_compact_lm_head(ref)
    return policy, ref, tokenizer, ref_dir, ("warm_start" if warm else "causal_lm")


def train_implicit(init_dir: str | Path, rows: Sequence[dict], train_cfg: dict, out_dir: str | Path,
                   seed: int = 0, eval_rows: Sequence[dict] | None = None, beta: float = 0.05) -> dict:
    """Train an implicit PRM from `init_dir` on outcome rows and write it to `out_dir`
    (causal LM, tokenizer, prm_config.json with `ref_dir` and `beta`; atomically).
    Metrics as prm_train.train_prm's, with eval AUCs from the step values."""
    from transformers import set_seed

    start = time.perf_counter()
    cfg = resolve_train_cfg(train_cfg)
    scaffold.configure_cpu()
    set_seed(seed)
    policy, ref, tokenizer, ref_dir, init_kind = load_models(init_dir)
    examples, counts = build_examples(tokenizer, rows, cfg["max_length"])
    if not examples:
        raise ValueError(f"no trainable implicit-PRM examples among {len(rows)} rows (all truncated or empty)")
    pad_id = pad_token_id(tokenizer)
    for e, s in zip(examples, reference_log_probs(ref, examples, pad_id)):
        e["ref_logp"] = s
    metrics = {**{f"data.{k}": v for k, v in counts.items()}, "init_kind": init_kind, "target": "implicit",
               "data.positive_rate": sum(e["outcome"] for e in examples) / len(examples)}
    config = {"kind": "implicit", "beta": beta, "ref_dir": str(ref_dir), "max_length": cfg["max_length"],
              "init_dir": str(init_dir), "init_kind": init_kind, "seed": seed, "train": cfg,
              "step_separator": "\n", "prompt_format": "formatting.build_prompt"}

    def extras(tmp: Path) -> None:
        tokenizer.save_pretrained(tmp)
        (tmp / PRM_CONFIG).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")

    with tempfile.TemporaryDirectory(prefix="prm-trainer-") as scratch:
        trainer, curve = _build_trainer(policy, examples, cfg, seed, scratch, pad_id, beta)
        metrics.update(scaffold.fit(trainer, curve, start))
        if eval_rows and is_main_process():
            scorer = ImplicitPRMScorer.from_models(trainer.model, ref, tokenizer, config)
            metrics.update(evaluate_reward_model(scorer, eval_rows, per_step=False))
        scaffold.save(trainer, out_dir, config, metrics, extras)
    return metrics


def _build_trainer(model, examples: list[dict], cfg: dict, seed: int, scratch: str, pad_id: int, beta: float):
    from functools import partial

    from transformers import TrainingArguments

    args = scaffold.training_arguments(TrainingArguments, cfg, scratch, seed,
                                       scaffold.planned_steps(len(examples), cfg),
                                       remove_unused_columns=False, include_num_input_tokens_seen="non_padding")
    curve = scaffold.loss_curve()
    trainer = _trainer_class(beta)(model=model, args=args, train_dataset=examples, callbacks=[curve],
                                   data_collator=partial(collate, pad_id=pad_id))
    trainer.lengths = [len(e["input_ids"]) for e in examples]
    return trainer, curve
