"""The one training scaffold behind every trainer in the project.

SFT/RFT (learn/sft.py), DPO (learn/dpo.py), GRPO (learn/grpo.py) and the reward
models (reward/prm_train.py) each build a TRL or transformers Trainer for their
algorithm; everything else they share lives here, once:

- precision: bf16 autocast over fp32 master weights where the hardware multiplies
  bf16 natively (a CUDA GPU with bf16, a CPU with avx512_bf16 or AMX), else fp32;
  `train.precision` overrides `auto`;
- the CPU's threads and allocator, set at the start of every fit;
- model and tokenizer loading, and TrainConfig -> TrainingArguments;
- length-grouped batches, so little compute goes to padding;
- the loss curve and one set of metric names (`train.*`);
- the sidecars and the atomic save (learn/distributed.py).

Why these settings, measured on this project's 2-core CPU (Intel Xeon with AMX;
SmolLM2-135M, batches of 16 demonstrations): a bf16 matmul ran at ~790 GFLOP/s
against ~150 in fp32; random batches of demonstrations were 30 % padding and
length-grouped ones 5 %; eager attention's backward was faster than SDPA's CPU
flash kernel at these lengths (bench/train_throughput.py records the figures).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import random
import time
from pathlib import Path
from typing import Callable, Sequence

from searchlearn.learn.distributed import copy_unchanged, save_trained, write_sidecars
from searchlearn.memory import keep_heap, release_heap

PRECISIONS = ("auto", "bf16", "fp32")
# Batches of similar length are cut from shuffled groups of this many batches: big
# enough to find similar lengths, small enough that every group mixes the data.
GROUP_BATCHES = 8
# Below this many optimizer steps a progress bar is noise (tests, tiny rounds).
PROGRESS_BAR_MIN_STEPS = 8


# ---- hardware ----------------------------------------------------------------------------

@functools.cache
def cpu_has_bf16() -> bool:
    """True when the CPU multiplies bf16 in hardware (AVX512-BF16 or AMX-BF16).
    Without either, bf16 autocast on a CPU only adds conversions."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(name: str) -> str:
    """'bf16' or 'fp32' for a `train.precision` value."""
    if name not in PRECISIONS:
        raise ValueError(f"train.precision={name!r} is not one of: {', '.join(PRECISIONS)}")
    if name != "auto":
        return name
    import torch

    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_has_bf16() else "fp32"


def configure_cpu() -> int:
    """Training threads = the cores this process may use, unless OMP_NUM_THREADS says
    otherwise (tests pin 1; accelerate launch gives each process its share). A
    vLLM engine started earlier in the process may have left torch at one thread.
    Also keeps freed memory in the process (`keep_heap`)."""
    import torch

    threads = int(os.environ.get("OMP_NUM_THREADS") or len(os.sched_getaffinity(0)))
    # torch._C's own setter: an in-process vLLM engine replaces torch.set_num_threads
    # with a no-op while it lives, and on CPU the engine stays up during training.
    torch._C.set_num_threads(max(1, threads))
    keep_heap()
    return torch.get_num_threads()


# ---- loading -----------------------------------------------------------------------------

def attention_for_training() -> str:
    """Eager attention on CPU: its backward ran ~1.4x faster than SDPA's CPU flash
    kernel for 16 x ~128-token batches here. SDPA elsewhere."""
    import torch

    return "sdpa" if torch.cuda.is_available() else "eager"


def load_causal_lm(path: str | Path):
    """fp32 weights (the master copy under bf16 autocast)."""
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32,
                                                attn_implementation=attention_for_training())


def load_tokenizer(path: str | Path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


# ---- arguments ---------------------------------------------------------------------------

def planned_steps(num_examples: int, train: dict, processes: int = 1) -> int:
    """Optimizer steps a run over `num_examples` takes (max_steps wins when set)."""
    if train["max_steps"] > 0:
        return train["max_steps"]
    batches = math.ceil(num_examples / (train["batch_size"] * processes))
    return max(1, math.ceil(batches * train["epochs"] / train["grad_accum"]))


def training_arguments(args_cls, train: dict, work_dir: str, seed: int, steps: int, **extra):
    """TrainConfig -> `args_cls` (TrainingArguments or a TRL config) for this scaffold."""
    import torch

    if not 0.0 <= train["warmup_ratio"] < 1.0:
        raise ValueError(f"train.warmup_ratio must be in [0, 1), got {train['warmup_ratio']}")
    bf16 = resolve_precision(train["precision"]) == "bf16"
    if "pad_to_multiple_of" in {f.name for f in dataclasses.fields(args_cls)}:  # TRL's configs pad in their collators
        extra.setdefault("pad_to_multiple_of", train["pad_to_multiple_of"])
    return args_cls(
        output_dir=work_dir,
        num_train_epochs=train["epochs"],
        max_steps=train["max_steps"],
        learning_rate=train["learning_rate"],
        lr_scheduler_type=train["lr_scheduler"],
        # Whole warm-up steps, rounded down: transformers rounds a fraction up, so a
        # one-step round spent its only step at learning rate 0.
        warmup_steps=int(train["warmup_ratio"] * steps),
        weight_decay=train["weight_decay"],
        per_device_train_batch_size=train["batch_size"],
        gradient_accumulation_steps=train["grad_accum"],
        bf16=bf16,
        fp16=False,
        use_cpu=not torch.cuda.is_available(),  # transformers refuses bf16 on CPU without it
        gradient_checkpointing=False,  # TRL turns it on by default; it costs a CPU a third forward
        optim="adamw_torch_fused",  # one kernel per step: 0.11 s vs 0.39 s for SmolLM2 on this CPU
        logging_steps=1,  # the loss curve (one float per step)
        logging_first_step=True,
        save_strategy="no",  # the final model is saved atomically by save()
        report_to="none",  # MLflow logging happens in the flow, from the returned metrics
        disable_tqdm=steps < PROGRESS_BAR_MIN_STEPS,
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
        seed=seed,
        data_seed=seed,
        **extra,
    )


# ---- batches -----------------------------------------------------------------------------

def length_grouped_order(lengths: Sequence[int], batch_size: int, seed: int) -> list[int]:
    """A shuffled order of indices in which every run of `batch_size` consecutive
    indices holds similar lengths: shuffle, sort within groups of GROUP_BATCHES
    batches, cut into batches, shuffle the batches. A short batch (the remainder)
    goes last, so the DataLoader's cuts line up with the groups' batches."""
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    span = batch_size * GROUP_BATCHES
    batches = []
    for g in range(0, len(order), span):
        group = sorted(order[g:g + span], key=lambda i: lengths[i])
        batches += [group[b:b + batch_size] for b in range(0, len(group), batch_size)]
    full = [b for b in batches if len(b) == batch_size]
    rng.shuffle(full)
    return [i for b in full + [b for b in batches if len(b) < batch_size] for i in b]


class LengthGroupedSampler:
    """A torch Sampler over `length_grouped_order`, reshuffled every epoch."""

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int):
        self.lengths, self.batch_size, self.seed, self.epoch = list(lengths), batch_size, seed, 0

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self):
        order = length_grouped_order(self.lengths, self.batch_size, self.seed * 100_003 + self.epoch)
        self.epoch += 1
        return iter(order)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch


def lengths_if_grouped(train: dict, lengths: list[int]) -> list[int] | None:
    """The example lengths for `grouped`'s sampler, or None (the Trainer's random
    sampler) when `train.group_by_length` is off."""
    return lengths if train["group_by_length"] else None


@functools.cache
def grouped(trainer_cls):
    """`trainer_cls` with length-grouped batches: set `lengths` (one per training
    example, in dataset order) on the instance before `train()`."""

    class Grouped(trainer_cls):
        lengths: list[int] | None = None

        def _get_train_sampler(self, train_dataset=None):
            if self.lengths is None:
                return super()._get_train_sampler(train_dataset)
            # Group by the global batch: accelerate deals each process consecutive
            # per-device batches of this order, so N processes see the examples of one
            # process with N times the batch, step for step.
            batch = self.args.per_device_train_batch_size * max(1, self.args.world_size)
            return LengthGroupedSampler(self.lengths, batch, self.args.seed)

    Grouped.__name__ = Grouped.__qualname__ = f"Grouped{trainer_cls.__name__}"
    return Grouped


# ---- running -----------------------------------------------------------------------------

@functools.cache
def _curve_class():
    from transformers import TrainerCallback

    class LossCurve(TrainerCallback):
        """Every step's logged loss and end time (with the tokens seen so far), and a
        forced log at the last step."""

        def __init__(self):
            self.losses: list[float] = []
            self.marks: list[tuple[float, int]] = []  # (perf_counter, tokens seen) at each step end

        def on_step_begin(self, args, state, control, **kwargs):
            if not self.marks:
                self.marks.append((time.perf_counter(), int(state.num_input_tokens_seen)))

        def on_step_end(self, args, state, control, **kwargs):
            self.marks.append((time.perf_counter(), int(state.num_input_tokens_seen)))
            if state.global_step >= state.max_steps:
                control.should_log = True

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                self.losses.append(float(logs["loss"]))

        def steady_tokens_per_s(self) -> float | None:
            """Tokens/s after the first step (which pays for fresh memory and kernel
            set-up), from the tokens the Trainer counted; None under two steps."""
            if len(self.marks) < 3:
                return None
            (t0, n0), (t1, n1) = self.marks[1], self.marks[-1]
            return round((n1 - n0) / (t1 - t0), 1) if t1 > t0 else None

    return LossCurve


def loss_curve():
    """A TrainerCallback that records the loss curve and step times for `fit`."""
    return _curve_class()()


@functools.cache
def _progress_class():
    from transformers.trainer_callback import ProgressCallback

    class StepProgress(ProgressCallback):
        """The Trainer's progress bar, with the latest loss and tokens/s on the bar
        itself instead of one printed dict per logged step (every step here)."""

        def on_log(self, args, state, control, logs=None, **kwargs):
            if state.is_world_process_zero and self.training_bar is not None and logs and "loss" in logs:
                rate = logs.get("train_tokens_per_second")
                self.training_bar.set_postfix(loss=f"{float(logs['loss']):.4f}",
                                              **({"tok/s": f"{float(rate):.0f}"} if rate is not None else {}))

    return StepProgress


def quiet_progress(trainer) -> None:
    """Swap the Trainer's progress bar for `StepProgress` (only where it shows one);
    without a bar the Trainer would print every step's log dict instead (PrinterCallback)."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.pop_callback(PrinterCallback)
    if trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(_progress_class()())


def fit(trainer, curve, start: float, tokens: Callable[[], int] | None = None) -> dict:
    """Train, then the `train.*` metrics every trainer reports.

    first_loss / last_loss are the means of the first and last fifth of the steps
    (single steps are noisy); tokens are non-padding input tokens over all epochs
    and processes; wall_s includes loading and tokenizing since `start`, train_s
    only the optimizer loop, and steady_tokens_per_s leaves out the first step."""
    configure_cpu()
    quiet_progress(trainer)
    began = time.perf_counter()
    result = trainer.train()
    train_s = time.perf_counter() - began
    losses = curve.losses
    k = max(1, len(losses) // 5)
    count = int(tokens() if tokens else trainer.state.num_input_tokens_seen)
    metrics = {
        "train.steps": int(trainer.state.global_step),
        "train.tokens": count,
        "train.first_loss": sum(losses[:k]) / k,
        "train.last_loss": sum(losses[-k:]) / k,
        "train.mean_loss": float(result.training_loss),
        "train.wall_s": round(time.perf_counter() - start, 3),
        "train.train_s": round(train_s, 3),
        "train.tokens_per_s": round(count / train_s, 1) if train_s > 0 else 0.0,
        "train.processes": int(trainer.accelerator.num_processes),
        "train.bf16": int(bool(trainer.args.bf16)),
        "train.threads": _threads(),
    }
    steady = curve.steady_tokens_per_s() if tokens is None else None
    if steady is not None:
        metrics["train.steady_tokens_per_s"] = steady
    free_training_state(trainer)
    return metrics


def free_training_state(trainer) -> None:
    """Drop what only the optimizer loop needed (gradients, AdamW's two moments: 3x the
    fp32 weights) and hand the heap that training fragmented back to the OS, before the
    held-out evaluation and the save run on top of it. Under keep_heap the evaluation's
    scorer could not reuse the training blocks: implicit_step's process grew from
    training's peak to an OOM kill at 23.2 GiB in that evaluation (README, "Memory")."""
    trainer.model.zero_grad(set_to_none=True)
    if trainer.optimizer is not None:
        trainer.optimizer.state.clear()
    release_heap()


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def save(trainer, out_dir: str | Path, sidecar: dict, metrics: dict,
         extras: Callable[[Path], None] | None = None) -> None:
    """The trained model, its tokenizer and the sidecars (how it was made, what it
    measured) into `out_dir`, atomically; every process must call this."""

    def write(tmp: Path) -> None:
        write_sidecars(tmp, sidecar, metrics)
        if extras is not None:
            extras(tmp)

    save_trained(trainer, out_dir, write)


def keep_unchanged(src_dir: str | Path, out_dir: str | Path, sidecar: dict, metrics: dict) -> dict:
    """Nothing to train on (no verified trace, no pair): the input checkpoint, as is."""
    metrics = {**metrics, "train.steps": 0, "train.tokens": 0, "train.processes": 0}
    copy_unchanged(src_dir, out_dir, sidecar, metrics)
    return metrics


def first_last(log_history: list[dict], key: str, first_name: str, last_name: str) -> dict:
    """The first and last logged values of `key` under the given names (none logged: {})."""
    values = [row[key] for row in log_history if row.get(key) is not None]
    return {first_name: float(values[0]), last_name: float(values[-1])} if values else {}
