"""Train a token-classification reward model (PRM, ORM or verifier) on labelled steps
with transformers' Trainer, on the project's training scaffold.

TRL 1.16 has no PRMTrainer, so this is the Math-Shepherd recipe in a small
Trainer subclass: a one-logit token-classification head on a causal LM, a soft
label at the last token of each step (positions from prm.encode_solutions), -100
everywhere else, and BCE-with-logits on the labelled positions only.

The other targets reuse everything but where the labels sit:
- `orm`: a single label, the solution's outcome, at the last step's end token
  (the standard outcome reward model);
- `verifier`: the outcome at *every* token of the solution (Cobbe et al. 2021,
  TinyGSM): each prefix learns to predict whether the solution will end right, so
  the score at a step's end is a value estimate, read like a PRM's.
The implicit PRM is a causal LM with a different loss: reward/implicit_train.py.
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
from searchlearn.reward.orm import ORMScorer
from searchlearn.reward.prm import PRM_CONFIG, PRMScorer, encode_with_starts, pad_batch, pad_token_id
from searchlearn.reward.quality import score_metrics
from searchlearn.reward.verifier import VerifierScorer

IGNORE = -100
# Target -> the scorer that reads the trained model (its held-out evaluation scores
# through it, exactly as search will).
SCORER_OF = {"prm": PRMScorer, "orm": ORMScorer, "verifier": VerifierScorer}
TARGETS = tuple(SCORER_OF)


def resolve_train_cfg(train_cfg: dict) -> dict:
    """TrainConfig defaults overlaid with `train_cfg`; unknown keys are typos, so they raise."""
    from searchlearn.config.schema import TrainConfig

    return with_defaults(train_cfg, schema_defaults(TrainConfig))


def build_examples(tokenizer, rows: Sequence[dict], max_length: int, target: str = "prm") -> tuple[list[dict], dict]:
    """Turn labelled-step rows into {input_ids, labels} examples.

    Labels are floats at the target's positions (see the module doc) and IGNORE
    elsewhere. Steps whose end token lies beyond max_length are dropped (the
    question is never cut: a label without its question is noise); a row with no
    step left is dropped, and so is an ORM or verifier row whose last step does not
    fit. Sequences are cut right after the last labelled token, since later tokens
    cannot affect it.
    """
    if target not in TARGETS:
        raise ValueError(f"unknown reward-model target {target!r}; choose one of {TARGETS}")
    examples, counts = [], {"rows": len(rows), "examples": 0, "labels": 0, "dropped_steps": 0, "dropped_rows": 0}
    encoded = encode_with_starts(tokenizer, [r["question"] for r in rows], [r["steps"] for r in rows], max_length)
    for row, (ids, positions, start) in zip(rows, encoded):
        pairs = label_pairs(row["labels"], positions, start, target)
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


def label_pairs(labels: Sequence[float], positions: Sequence[int | None], start: int,
                target: str) -> list[tuple[int, float]]:
    """(token position, label) pairs of one solution for `target`."""
    if target == "prm":
        return [(p, float(y)) for p, y in zip(positions, labels) if p is not None]
    last = positions[-1] if positions else None
    if last is None:
        return []
    if target == "orm":
        return [(last, float(labels[-1]))]
    return [(t, float(labels[-1])) for t in range(start, last + 1)]  # verifier: every solution token


def collate(batch: Sequence[dict], pad_id: int, multiple: int = 1) -> dict:
    import torch

    ids, mask = pad_batch([b["input_ids"] for b in batch], pad_id, multiple)
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
            scorer = SCORER_OF[target].from_model(trainer.model, tokenizer, config)
            metrics.update(evaluate_reward_model(scorer, eval_rows, per_step=target == "prm"))
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
                               data_collator=partial(collate, pad_id=pad_token_id(tokenizer),
                                                     multiple=cfg["pad_to_multiple_of"]))
    trainer.lengths = scaffold.lengths_if_grouped(cfg, [len(e["input_ids"]) for e in examples])
    return trainer, curve


def evaluate_reward_model(scorer, rows: Sequence[dict], per_step: bool) -> dict:
    """Held-out metrics (quality.score_metrics) of a StepScorer over a model in
    memory: AUC and accuracy against the rows' labels, every step's (`per_step`, a
    PRM) or each solution's outcome, and against the oracle where rows carry it.
    Scored under bf16 autocast where the hardware does bf16, as a loaded scorer would."""
    import torch

    scorer.model.eval()
    device = next(scorer.model.parameters()).device.type
    with torch.autocast(device, dtype=torch.bfloat16, enabled=scaffold.resolve_precision("auto") == "bf16"):
        scores = scorer.score([r["question"] for r in rows], [r["steps"] for r in rows])
    return score_metrics(rows, scores, per_step)
