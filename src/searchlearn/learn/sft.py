"""Supervised fine-tuning on prompt/completion pairs with TRL's SFTTrainer.

Shared by the initial SFT on demonstrations and by RFT on verified traces. Loss is
on completion tokens only and TRL appends EOS to every completion, so the policy
learns to stop after its answer line. The Trainer works in a throw-away
directory (no checkpoints); only the final model lands in `out_dir`, atomically,
written by the main process when accelerate launch runs several (learn/launch.py).
"""

from __future__ import annotations

import contextlib
import functools
import math
import tempfile
import time

from searchlearn.learn.distributed import copy_unchanged, save_trained, write_sidecars
# Below this many optimizer steps a progress bar is noise (tests, tiny rounds).
PROGRESS_BAR_MIN_STEPS = 8


def train_sft(model_dir: str, examples: list[dict], train_cfg: dict, out_dir: str, seed: int = 0) -> dict:
    """Fine-tune the checkpoint in `model_dir` on `examples` ({prompt, completion}) and
    write the result to `out_dir`. Returns flat metrics (also saved as train_metrics.json).

    `train_cfg` holds the fields of config.schema.TrainConfig. With no examples the
    input checkpoint is copied unchanged (a round where nothing verified must not
    crash) and the loss keys are absent from the metrics.
    """
    if not examples:
        return _copy_unchanged(model_dir, train_cfg, out_dir, seed)
    from searchlearn.models.init import prepare_tokenizer, sync_special_tokens

    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sft-work-") as work:
        trainer, losses = _build_trainer(model_dir, examples, train_cfg, work, seed)
        result = trainer.train()
        metrics = _metrics(examples, losses.losses, result, trainer.state, time.perf_counter() - start,
                           trainer.accelerator.num_processes)
        # Same invariants as the base checkpoint: left padding, and the EOS that TRL
        # appended to every completion is a stop token for generation.
        prepare_tokenizer(trainer.processing_class)
        sync_special_tokens(trainer.model, trainer.processing_class)
        config = _sidecar_config(train_cfg, model_dir, seed)
        save_trained(trainer, out_dir, lambda tmp: write_sidecars(tmp, config, metrics))
    return metrics


def planned_steps(num_examples: int, train_cfg: dict) -> int:
    """Optimizer steps the Trainer will take (for the progress-bar decision and logs)."""
    if train_cfg["max_steps"] > 0:
        return train_cfg["max_steps"]
    batches = math.ceil(num_examples / train_cfg["batch_size"])
    return max(1, math.ceil(batches * train_cfg["epochs"] / train_cfg["grad_accum"]))


def _build_trainer(model_dir: str, examples: list[dict], train_cfg: dict, work_dir: str, seed: int):
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    rows = [{"prompt": e["prompt"], "completion": e["completion"]} for e in examples]
    losses = _loss_recorder_class()()
    with _quiet_datasets():
        trainer = SFTTrainer(
            model=model,
            args=_sft_config(train_cfg, work_dir, seed, planned_steps(len(rows), train_cfg)),
            train_dataset=Dataset.from_list(rows),
            processing_class=tokenizer,
            callbacks=[losses],
        )
    return trainer, losses


def _sft_config(train_cfg: dict, work_dir: str, seed: int, steps: int):
    from trl import SFTConfig

    from searchlearn.learn.training_args import training_kwargs

    return SFTConfig(
        **{**training_kwargs(train_cfg, work_dir, seed), "disable_tqdm": steps < PROGRESS_BAR_MIN_STEPS},
        max_length=train_cfg["max_length"],
        completion_only_loss=True,
        include_num_input_tokens_seen="non_padding",
        dataloader_num_workers=0,
    )


@functools.cache
def _loss_recorder_class():
    # Built on first use so importing this module does not import transformers.
    from transformers import TrainerCallback

    class LossRecorder(TrainerCallback):
        """Keeps every logged loss and forces a log at the last step, so `last_loss`
        exists even when the run is shorter than `logging_steps`."""

        def __init__(self):
            self.losses: list[float] = []

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step >= state.max_steps:
                control.should_log = True

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                self.losses.append(float(logs["loss"]))

    return LossRecorder


@contextlib.contextmanager
def _quiet_datasets():
    """Tokenizing a few hundred rows draws three progress bars per round; hide them."""
    from datasets.utils import logging as ds_logging

    was_enabled = ds_logging.is_progress_bar_enabled()
    ds_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            ds_logging.enable_progress_bar()


def _metrics(examples: list[dict], losses: list[float], result, state, wall: float, processes: int) -> dict:
    """first_loss is step 1's, last_loss the mean over the final logging window, mean_loss
    the mean over all steps (losses are averaged over processes). `tokens` counts
    non-padding input tokens over all epochs and processes; wall_s includes loading
    and tokenizing, train_s only the optimizer loop; `processes` is the data-parallel
    world the Trainer actually ran in."""
    tokens, train_s = int(state.num_input_tokens_seen), float(result.metrics["train_runtime"])
    return {
        "examples": len(examples),
        "steps": int(state.global_step),
        "tokens": tokens,
        "first_loss": losses[0],
        "last_loss": losses[-1],
        "mean_loss": float(result.training_loss),
        "wall_s": round(wall, 3),
        "train_s": round(train_s, 3),
        "tokens_per_s": round(tokens / train_s, 1) if train_s > 0 else 0.0,
        "processes": int(processes),
    }


def _copy_unchanged(model_dir: str, train_cfg: dict, out_dir: str, seed: int) -> dict:
    metrics = {"examples": 0, "steps": 0, "tokens": 0, "wall_s": 0.0, "train_s": 0.0, "tokens_per_s": 0.0,
               "processes": 0}
    copy_unchanged(model_dir, out_dir, _sidecar_config(train_cfg, model_dir, seed), metrics)
    return metrics


def _sidecar_config(train_cfg: dict, model_dir: str, seed: int) -> dict:
    return {"train": train_cfg, "seed": seed, "base_model": str(model_dir)}
