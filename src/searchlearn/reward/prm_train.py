"""Train a process (or outcome) reward model on labelled steps with transformers' Trainer.

TRL 1.16 has no PRMTrainer, so this is the Math-Shepherd recipe in a small
Trainer subclass: a one-logit token-classification head on a causal LM, a soft
label at the last token of each step (positions from prm.encode_solutions), -100
everywhere else, and BCE-with-logits on the labelled positions only.

`target="orm"` reuses everything but keeps a single label, the solution's
outcome, at the last step's end token: the standard outcome reward model.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Sequence

from searchlearn.learn import scaffold
from searchlearn.learn.base import schema_defaults, with_defaults
from searchlearn.learn.distributed import is_main_process
from searchlearn.reward.prm import (
    PRM_CONFIG,
    encode_solutions,
    pad_batch,
    pad_token_id,
    score_positions,
    scoring_max_length,
)

IGNORE = -100
TARGETS = ("prm", "orm")


def resolve_train_cfg(train_cfg: dict) -> dict:
    """TrainConfig defaults overlaid with `train_cfg`; unknown keys are typos, so they raise."""
    from searchlearn.config.schema import TrainConfig

    return with_defaults(train_cfg, schema_defaults(TrainConfig))


def build_examples(tokenizer, rows: Sequence[dict], max_length: int, target: str = "prm") -> tuple[list[dict], dict]:
    """Turn labelled-step rows into {input_ids, labels} examples.

    Labels are floats at step-end positions and IGNORE elsewhere. Steps whose end
    token lies beyond max_length are dropped (the question is never cut: a PRM
    label without its question is noise); a row with no step left is dropped,
    and so is an ORM row whose last step does not fit. Sequences are cut right
    after the last labelled token, since later tokens cannot affect it.
    """
    if target not in TARGETS:
        raise ValueError(f"unknown reward-model target {target!r}; choose one of {TARGETS}")
    examples, counts = [], {"rows": len(rows), "examples": 0, "labels": 0, "dropped_steps": 0, "dropped_rows": 0}
    encoded = encode_solutions(tokenizer, [r["question"] for r in rows], [r["steps"] for r in rows], max_length)
    for row, (ids, positions) in zip(rows, encoded):
        pairs = [(p, float(y)) for p, y in zip(positions, row["labels"]) if p is not None]
        if target == "orm":
            pairs = [(positions[-1], float(row["labels"][-1]))] if positions[-1] is not None else []
        counts["dropped_steps"] += len(row["steps"]) - len(pairs) if target == "prm" else 0
        if not pairs:
            counts["dropped_rows"] += 1
            continue
        cut = max(p for p, _ in pairs) + 1
        labels = [float(IGNORE)] * cut
        for p, y in pairs:
            labels[p] = y
        examples.append({"input_ids": ids[:cut], "labels": labels})
        counts["labels"] += len(pairs)
    counts["examples"] = len(examples)
    return examples, counts


def collate(batch: Sequence[dict], pad_id: int) -> dict:
    import torch

    ids, mask = pad_batch([b["input_ids"] for b in batch], pad_id)
    labels = torch.full(ids.shape, float(IGNORE))
    for i, b in enumerate(batch):
        labels[i, : len(b["labels"])] = torch.tensor(b["labels"])
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def masked_bce(logits, labels):
    """BCE-with-logits over labelled positions only. Masking *before* the loss
    matters: an IGNORE (-100) fed to BCE as a target gives a huge, wrong gradient."""
    import torch.nn.functional as F

    keep = labels != IGNORE
    return F.binary_cross_entropy_with_logits(logits[keep].float(), labels[keep].float())


def _trainer_class():
    from transformers import Trainer

    class BCETrainer(scaffold.grouped(Trainer)):
        # compute_loss returns a per-micro-batch mean; let Trainer divide by grad_accum.
        loss_is_scaled_for_ga = False

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            labels = inputs.pop("labels")  # the model's own token-classification loss is cross-entropy: never used
            outputs = model(**inputs)
            loss = masked_bce(outputs.logits[..., 0], labels)
            return (loss, outputs) if return_outputs else loss

    return BCETrainer


def load_for_training(init_dir: str | Path):
    """(model, tokenizer, init_kind). A previous reward-model dir warm-starts head
    and backbone; a causal-LM checkpoint gives its backbone and a new score head."""
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    warm = (Path(init_dir) / PRM_CONFIG).is_file()
    tokenizer = AutoTokenizer.from_pretrained(init_dir)
    model, info = AutoModelForTokenClassification.from_pretrained(
        init_dir, num_labels=1, output_loading_info=True, attn_implementation=scaffold.attention_for_training())
    new = set(info["missing_keys"]) | set(info["mismatched_keys"])
    allowed = set() if warm else {"score.weight", "score.bias"}
    if new - allowed:
        raise ValueError(f"loading {init_dir} as a reward model left weights uninitialised: {sorted(new - allowed)}")
    return model, tokenizer, ("warm_start" if warm else "causal_lm")


def train_prm(
    init_dir: str | Path,
    rows: Sequence[dict],
    train_cfg: dict,
    out_dir: str | Path,
    seed: int = 0,
    eval_rows: Sequence[dict] | None = None,
    target: str = "prm",
) -> dict:
    """Train a reward model from `init_dir` on labelled-step rows and write it to
    `out_dir` (model, tokenizer, prm_config.json, metrics.json; atomically).

    Returns small metrics: loss_first/loss_last (mean of the first/last fifth of
    micro-batches, which is less noisy than single batches), steps, seconds, data
    counts and, with eval_rows, step-level AUC and accuracy at 0.5 against hard
    labels (label >= 0.5).
    """
    from transformers import set_seed

    start = time.perf_counter()
    cfg = resolve_train_cfg(train_cfg)
    scaffold.configure_cpu()
    set_seed(seed)  # the new score head is initialised at load time
    model, tokenizer, init_kind = load_for_training(init_dir)
    examples, counts = build_examples(tokenizer, rows, cfg["max_length"], target)
    if not examples:
        raise ValueError(f"no trainable {target.upper()} examples among {len(rows)} rows (all truncated or empty)")
    metrics = {**{f"data.{k}": v for k, v in counts.items()}, "init_kind": init_kind, "target": target}
    config = {"kind": target, "max_length": cfg["max_length"], "init_dir": str(init_dir),
              "init_kind": init_kind, "seed": seed, "train": cfg, "step_separator": "\n",
              "prompt_format": "formatting.build_prompt"}

    def extras(tmp: Path) -> None:
        tokenizer.save_pretrained(tmp)
        (tmp / PRM_CONFIG).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")

    with tempfile.TemporaryDirectory(prefix="prm-trainer-") as scratch:
        trainer, curve = _build_trainer(model, tokenizer, examples, cfg, seed, scratch)
        metrics.update(scaffold.fit(trainer, curve, start))
        # Under accelerate launch the model is the same on every process after the
        # last step; the main process alone measures it on the held-out rows.
        if eval_rows and is_main_process():
            metrics.update(evaluate_reward_model(trainer.model, tokenizer, eval_rows, target))
        scaffold.save(trainer, out_dir, config, metrics, extras)
    return metrics


def _build_trainer(model, tokenizer, examples: list[dict], cfg: dict, seed: int, scratch: str):
    from functools import partial

    from transformers import TrainingArguments

    args = scaffold.training_arguments(TrainingArguments, cfg, scratch, seed,
                                       scaffold.planned_steps(len(examples), cfg),
                                       remove_unused_columns=False, include_num_input_tokens_seen="non_padding")
    curve = scaffold.loss_curve()
    trainer = _trainer_class()(model=model, args=args, train_dataset=examples, callbacks=[curve],
                               data_collator=partial(collate, pad_id=pad_token_id(tokenizer)))
    trainer.lengths = scaffold.lengths_if_grouped(cfg, [len(e["input_ids"]) for e in examples])
    return trainer, curve


def evaluate_reward_model(model, tokenizer, rows: Sequence[dict], target: str = "prm") -> dict:
    """Step-level AUC and accuracy at 0.5 against hard labels (label >= 0.5), scored
    as PRMScorer would (bf16 where the hardware does it). For an ORM only each
    row's last step counts, which is what it is trained on."""
    import torch

    model.eval()
    device = next(model.parameters()).device.type
    with torch.autocast(device, dtype=torch.bfloat16, enabled=scaffold.resolve_precision("auto") == "bf16"):
        scores = score_positions(model, tokenizer, [r["question"] for r in rows], [r["steps"] for r in rows],
                                 batch_size=32, max_length=scoring_max_length(model))
    pairs = []
    for row, s in zip(rows, scores):
        idx = range(len(s)) if target == "prm" else [len(s) - 1]
        pairs += [(s[j], row["labels"][j] >= 0.5) for j in idx if s[j] is not None]
    preds, truth = [p for p, _ in pairs], [t for _, t in pairs]
    acc = sum((p >= 0.5) == t for p, t in pairs) / len(pairs) if pairs else float("nan")
    return {"eval_steps": len(pairs), "eval_auc": rank_auc(preds, truth), "eval_acc": acc,
            "eval_positive_rate": sum(truth) / len(truth) if truth else float("nan")}


def rank_auc(scores: Sequence[float], positives: Sequence[bool]) -> float:
    """ROC AUC as the Mann-Whitney statistic (ties count half); NaN if a class is
    missing. O(n log n), no sklearn needed."""
    n_pos = sum(bool(p) for p in positives)
    n_neg = len(positives) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    rank_sum, i = 0.0, 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        mid_rank = (i + j) / 2 + 1  # tied scores share the average rank
        rank_sum += mid_rank * sum(bool(positives[order[k]]) for k in range(i, j + 1))
        i = j + 1
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
