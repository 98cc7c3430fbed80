"""The training scaffold's pure parts: batch order, precision choice, step counts."""

from __future__ import annotations

import random

import pytest

from searchlearn.learn import scaffold
from searchlearn.learn.scaffold import LengthGroupedSampler, length_grouped_order, planned_steps


def lengths(n: int = 203, seed: int = 0) -> list[int]:
    rng = random.Random(seed)
    return [rng.randint(40, 200) for _ in range(n)]


def test_order_is_a_permutation_with_the_short_batch_last():
    lens = lengths()
    order = length_grouped_order(lens, 16, seed=3)
    assert sorted(order) == list(range(len(lens)))
    batches = [order[i:i + 16] for i in range(0, len(order), 16)]
    assert [len(b) for b in batches] == [16] * 12 + [11]


def test_batches_waste_far_less_padding_than_random_ones():
    lens = lengths()

    def padding(order):
        batches = [order[i:i + 16] for i in range(0, len(order), 16)]
        slots = sum(max(lens[i] for i in b) * len(b) for b in batches)
        return 1 - sum(lens) / slots

    shuffled = list(range(len(lens)))
    random.Random(0).shuffle(shuffled)
    assert padding(length_grouped_order(lens, 16, seed=0)) < 0.1 < 0.3 < padding(shuffled)


def test_batch_order_is_shuffled_not_sorted_and_changes_every_epoch():
    lens = lengths()
    sampler = LengthGroupedSampler(lens, 16, seed=0)
    first, second = list(sampler), list(sampler)
    assert first != second and sorted(first) == sorted(second)
    maxima = [max(lens[i] for i in first[b:b + 16]) for b in range(0, 192, 16)]
    assert maxima != sorted(maxima) and maxima != sorted(maxima, reverse=True)  # no long-to-short curriculum
    assert list(LengthGroupedSampler(lens, 16, seed=0)) == first  # seeded


def test_precision_auto_follows_the_hardware(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(scaffold, "cpu_has_bf16", lambda: True)
    assert scaffold.resolve_precision("auto") == "bf16"
    monkeypatch.setattr(scaffold, "cpu_has_bf16", lambda: False)
    assert scaffold.resolve_precision("auto") == "fp32"
    assert scaffold.resolve_precision("bf16") == "bf16"
    with pytest.raises(ValueError, match="train.precision"):
        scaffold.resolve_precision("fp8")


def test_planned_steps_and_whole_warmup_steps():
    from dataclasses import asdict

    from transformers import TrainingArguments

    from searchlearn.config.schema import TrainConfig

    train = {**asdict(TrainConfig()), "batch_size": 16, "epochs": 2.0, "warmup_ratio": 0.05}
    assert planned_steps(100, train) == 14
    assert planned_steps(100, {**train, "max_steps": 3}) == 3
    # A one-step run must not spend its only step at learning rate 0.
    args = scaffold.training_arguments(TrainingArguments, train, "/tmp/unused", 0, steps=1)
    assert args.warmup_steps == 0
    assert scaffold.training_arguments(TrainingArguments, train, "/tmp/unused", 0, steps=40).warmup_steps == 2


def test_trl_configs_get_the_pad_multiple_and_transformers_args_do_not_need_it():
    """TRL's collators pad to `pad_to_multiple_of`; plain TrainingArguments has no such
    field (the reward-model collators read it from the train config)."""
    from dataclasses import asdict

    from transformers import TrainingArguments
    from trl import DPOConfig, SFTConfig

    from searchlearn.config.schema import TrainConfig

    train = {**asdict(TrainConfig()), "pad_to_multiple_of": 32}
    for cls in (SFTConfig, DPOConfig):
        assert scaffold.training_arguments(cls, train, "/tmp/unused", 0, steps=4).pad_to_multiple_of == 32
    assert not hasattr(scaffold.training_arguments(TrainingArguments, train, "/tmp/unused", 0, steps=4),
                       "pad_to_multiple_of")
