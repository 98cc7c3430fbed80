"""Supervised fine-tuning on prompt/completion pairs with TRL's SFTTrainer.

Shared by the initial SFT on demonstrations and by RFT on verified traces. Loss is
on completion tokens only and TRL appends EOS to every completion, so the policy
learns to stop after its answer line. The Trainer works in a throw-away
directory (no checkpoints); only the final model lands in `out_dir`, atomically.

What TRL does and this trainer changes, through TRL's own hooks (learn/scaffold.py
and learn/lm_head.py say why): the LM head scores completion tokens only
(`compute_loss` on the compact fused head), batches are length-grouped (the
sampler), the precision follows the hardware, and TRL's per-step entropy and token
accuracy, an extra pass over the vocabulary at every token, are off unless
`train.token_metrics` asks for them.
"""

from __future__ import annotations

import functools
import tempfile
import time

from searchlearn.learn import scaffold
from searchlearn.learn.lm_head import add_compact_lm_head


def train_sft(model_dir: str, examples: list[dict], train_cfg: dict, out_dir: str, seed: int = 0) -> dict:
    """Fine-tune the checkpoint in `model_dir` on `examples` ({prompt, completion}) and
    write the result to `out_dir`. Returns the scaffold's `train.*` metrics plus
    `train.examples` (also saved as train_metrics.json).

    With no examples the input checkpoint is copied unchanged (a round where nothing
    verified must not crash) and the loss keys are absent from the metrics.
    """
    sidecar = {"train": train_cfg, "seed": seed, "base_model": str(model_dir)}
    if not examples:
        return scaffold.keep_unchanged(model_dir, out_dir, sidecar, {"train.examples": 0})
    from searchlearn.models.init import prepare_tokenizer, sync_special_tokens

    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sft-work-") as work:
        trainer, curve = _build_trainer(model_dir, examples, train_cfg, work, seed)
        metrics = {"train.examples": len(examples), **scaffold.fit(trainer, curve, start)}
        # Same invariants as the base checkpoint: left padding, and the EOS that TRL
        # appended to every completion is a stop token for generation.
        prepare_tokenizer(trainer.processing_class)
        sync_special_tokens(trainer.model, trainer.processing_class)
        scaffold.save(trainer, out_dir, sidecar, metrics)
    return metrics


def _build_trainer(model_dir: str, examples: list[dict], train_cfg: dict, work_dir: str, seed: int):
    from datasets import Dataset
    from trl import SFTConfig

    scaffold.configure_cpu()
    tokenizer = scaffold.load_tokenizer(model_dir)
    model = scaffold.load_causal_lm(model_dir)
    rows = [{"prompt": e["prompt"], "completion": e["completion"]} for e in examples]
    args = scaffold.training_arguments(
        SFTConfig, train_cfg, work_dir, seed, scaffold.planned_steps(len(rows), train_cfg),
        max_length=train_cfg["max_length"], completion_only_loss=True,
        include_num_input_tokens_seen="non_padding",
    )
    curve = scaffold.loss_curve()
    with _quiet_datasets():
        trainer = _trainer_class()(model=model, args=args, train_dataset=Dataset.from_list(rows),
                                   processing_class=tokenizer, callbacks=[curve])
    trainer.token_metrics = bool(train_cfg["token_metrics"])
    fields = ("log_probs", "entropy", "is_top1") if trainer.token_metrics else ("log_probs",)
    add_compact_lm_head(trainer.model, outputs=fields)
    trainer.lengths = scaffold.lengths_if_grouped(train_cfg, [len(ids) for ids in trainer.train_dataset["input_ids"]])
    return trainer, curve


@functools.cache
def _trainer_class():
    from trl import SFTTrainer

    class CompactSFTTrainer(scaffold.grouped(SFTTrainer)):
        """The loss from the compact head's log-probs; TRL's own compute_loss (with
        its entropy and token-accuracy metrics) only when token_metrics is on."""

        token_metrics = False

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if self.token_metrics:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            outputs = model(**inputs, use_cache=False, fused_lm_head=True, num_items_in_batch=num_items_in_batch)
            loss = outputs.loss
            # As TRL and Trainer do: num_items_in_batch counts every rank's tokens, and
            # DDP averages the gradients over ranks.
            if self.args.average_tokens_across_devices and num_items_in_batch is not None:
                loss = loss * self.accelerator.num_processes
            return (loss, outputs) if return_outputs else loss

    return CompactSFTTrainer


class _quiet_datasets:
    """Tokenizing a few hundred rows draws three progress bars per round; hide them."""

    def __enter__(self):
        from datasets.utils import logging as ds_logging

        self.was_enabled = ds_logging.is_progress_bar_enabled()
        ds_logging.disable_progress_bar()

    def __exit__(self, *exc):
        from datasets.utils import logging as ds_logging

        if self.was_enabled:
            ds_logging.enable_progress_bar()
