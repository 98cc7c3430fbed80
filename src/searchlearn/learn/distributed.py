"""What a training job does differently when `accelerate launch` runs it in several
processes: only the main process writes, and it writes what every process trained.

Every helper here is also correct in a single plain process (rank 0 of 1), so the
trainers call them unconditionally.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable

from searchlearn.artifacts import COMPLETE_MARKER, atomic_dir, atomic_write_json

# Sidecars saved with the weights, so a checkpoint says how it was made, even outside MLflow.
METRICS_FILE = "train_metrics.json"
CONFIG_FILE = "train_config.json"
# Trainer.save_model pickles its TrainingArguments beside the weights; a checkpoint
# here carries its settings in train_config.json instead.
TRAINING_ARGS_FILE = "training_args.bin"


def process_rank() -> int:
    """This process's global rank: torchrun (under accelerate launch) sets RANK."""
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    return process_rank() == 0


def save_trained(trainer, out_dir: str | Path, extras: Callable[[Path], None]) -> None:
    """The trained model (and the trainer's tokenizer) into `out_dir`, atomically, plus
    whatever `extras(tmp_dir)` writes beside it.

    Every process must call this: under FSDP or DeepSpeed ZeRO-3 the full weights
    are gathered from all of them inside `Trainer.save_model`. Only the main process
    writes; the others wait for it, so no process returns before the checkpoint exists.
    """
    if trainer.is_world_process_zero():
        with atomic_dir(out_dir) as tmp:
            trainer.save_model(str(tmp))
            (tmp / TRAINING_ARGS_FILE).unlink(missing_ok=True)
            extras(tmp)
    else:
        trainer.save_model()  # its own output_dir: takes part in the gather, writes nothing
    trainer.accelerator.wait_for_everyone()


def copy_unchanged(src_dir: str | Path, out_dir: str | Path, config: dict, metrics: dict) -> None:
    """`src_dir`'s checkpoint as `out_dir`, with new sidecars, atomically: a stage
    with nothing to train on must not crash. Under accelerate launch the main
    process copies; no collective is involved, so the others simply return."""
    if not is_main_process():
        return
    skip = shutil.ignore_patterns(COMPLETE_MARKER, METRICS_FILE, CONFIG_FILE)
    with atomic_dir(out_dir) as tmp:
        shutil.copytree(src_dir, tmp, ignore=skip, dirs_exist_ok=True)
        write_sidecars(tmp, config, metrics)


def write_sidecars(ckpt_dir: Path, config: dict, metrics: dict) -> None:
    atomic_write_json(ckpt_dir / CONFIG_FILE, config)
    atomic_write_json(ckpt_dir / METRICS_FILE, metrics)
