"""Problem sources by config name. Each returns (train, test) problem lists."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from searchlearn.problems.base import Problem


def _arithmetic(cfg: dict) -> tuple[list[Problem], list[Problem]]:
    from searchlearn.problems.arithmetic import make_splits

    return make_splits(
        train_size=cfg["train_size"], test_size=cfg["test_size"], min_steps=cfg["min_steps"],
        max_steps=cfg["max_steps"], max_value=cfg["max_value"], seed=cfg["seed"],
    )


def _gsm8k_jsonl(cfg: dict) -> tuple[list[Problem], list[Problem]]:
    from searchlearn.problems.gsm8k import load_jsonl

    return (load_jsonl(cfg["train_path"], limit=cfg["train_size"], split="train"),
            load_jsonl(cfg["test_path"], limit=cfg["test_size"], split="test"))


def _gsm8k_hub(cfg: dict) -> tuple[list[Problem], list[Problem]]:
    from searchlearn.problems.gsm8k import load_hub

    return (load_hub(cfg["hub_id"], cfg["hub_config"], "train", limit=cfg["train_size"]),
            load_hub(cfg["hub_id"], cfg["hub_config"], "test", limit=cfg["test_size"]))


SOURCES: dict[str, Callable[[dict], tuple[list[Problem], list[Problem]]]] = {
    "arithmetic": _arithmetic,
    "gsm8k_jsonl": _gsm8k_jsonl,
    "gsm8k_hub": _gsm8k_hub,
}


def load_splits(cfg: dict) -> tuple[list[Problem], list[Problem]]:
    return SOURCES[cfg["source"]](cfg)


# Eval sets shipped with the package, by name (eval.extra_sets).
BUNDLED_EVAL_SETS = {"handwritten": Path(__file__).parent / "data" / "handwritten.jsonl"}


def eval_set(entry: str) -> tuple[str, str]:
    """(name, path) of an `eval.extra_sets` entry: a bundled set or a JSONL path."""
    if entry in BUNDLED_EVAL_SETS:
        return entry, str(BUNDLED_EVAL_SETS[entry])
    return Path(entry).stem, entry
