"""TrainConfig -> transformers/TRL TrainingArguments keywords, shared by every
trainer in learn/ (SFT, DPO, GRPO) so CPU-safe defaults live in one place."""

from __future__ import annotations


def training_kwargs(train: dict, output_dir: str, seed: int) -> dict:
    """searchlearn TrainConfig -> transformers/TRL TrainingArguments keywords."""
    import torch

    # transformers 5 removed warmup_ratio: warmup_steps < 1 is a fraction, >= 1 a step count.
    if not 0.0 <= train["warmup_ratio"] < 1.0:
        raise ValueError(f"train.warmup_ratio must be in [0, 1), got {train['warmup_ratio']}")
    return {
        "output_dir": output_dir,
        "num_train_epochs": train["epochs"],
        "max_steps": train["max_steps"],
        "learning_rate": train["learning_rate"],
        "lr_scheduler_type": train["lr_scheduler"],
        "warmup_steps": float(train["warmup_ratio"]),
        "weight_decay": train["weight_decay"],
        "per_device_train_batch_size": train["batch_size"],
        "gradient_accumulation_steps": train["grad_accum"],
        # TRL defaults bf16 and gradient checkpointing to True; both slow a CPU down.
        "bf16": train["bf16"],
        "fp16": False,
        # Without CUDA, transformers 5 refuses bf16 unless told the run is CPU-only.
        "use_cpu": not torch.cuda.is_available(),
        "gradient_checkpointing": False,
        "logging_steps": train["logging_steps"],
        "logging_first_step": True,
        "save_strategy": "no",  # the final model is saved atomically by us
        "report_to": "none",  # MLflow logging happens in the task, from the returned metrics
        "disable_tqdm": True,
        "dataloader_pin_memory": torch.cuda.is_available(),  # pinning without a GPU only warns
        "seed": seed,
        "data_seed": seed,
    }
