"""The range of every numeric setting, by dotted key.

Keys are fnmatch patterns over the flattened config (`*` spans dots), so one rule
covers every `*.train.*` section, including fields a trainer adds later. Every
rule that matches a key applies; a list value (budgets, rerank sizes) is checked
entry by entry. tests/unit/test_config.py fails for a numeric setting that no rule
covers, so a new field cannot go unchecked.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Iterator


@dataclass(frozen=True)
class Range:
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value: float) -> bool:
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return self.high is None or (value < self.high or (not self.high_open and value == self.high))

    def __str__(self) -> str:
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        return f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"


POSITIVE = Range(0, low_open=True)
NON_NEGATIVE = Range(0)
FRACTION = Range(0, 1)  # [0, 1]
PROBABILITY_MASS = Range(0, 1, low_open=True)  # (0, 1]: top_p, memory fractions

RULES: dict[str, Range] = {
    "seed": NON_NEGATIVE,
    "rounds": NON_NEGATIVE,
    "policy.tiny.*": POSITIVE,
    "init.num_demos": NON_NEGATIVE,
    # optimizer settings of every trainer
    "*.train.epochs": POSITIVE,
    "*.train.max_steps": Range(-1),  # <= 0: train by epochs
    "*.train.learning_rate": POSITIVE,
    "*.train.warmup_ratio": FRACTION,
    "*.train.weight_decay": NON_NEGATIVE,
    "*.train.batch_size": POSITIVE,
    "*.train.grad_accum": POSITIVE,
    "*.train.max_length": POSITIVE,
    "*.train.pad_to_multiple_of": POSITIVE,
    # problems
    "problems.train_size": NON_NEGATIVE,
    "problems.test_size": NON_NEGATIVE,
    "problems.min_steps": POSITIVE,
    "problems.max_steps": POSITIVE,
    "problems.max_value": POSITIVE,
    "problems.seed": NON_NEGATIVE,
    # generation and sampling
    "generation.gpu_memory_utilization": PROBABILITY_MASS,
    "generation.kv_cache_gib": NON_NEGATIVE,
    "generation.tensor_parallel_size": POSITIVE,
    "generation.max_model_len": POSITIVE,
    "generation.hf_batch_size": POSITIVE,
    "*.temperature": NON_NEGATIVE,
    "*.top_p": PROBABILITY_MASS,
    # search (budgets in samples' worth, tokens, steps)
    "search.problems_per_round": POSITIVE,
    "search.n": POSITIVE,
    "search.max_new_tokens": POSITIVE,
    "search.max_step_tokens": POSITIVE,
    "search.max_steps": POSITIVE,
    "search.beam_search.beam_width": NON_NEGATIVE,  # 0: n // expansions
    "search.*.expansions": POSITIVE,
    "search.mcts.c_puct": NON_NEGATIVE,
    "search.mcts.rollout_weight": FRACTION,
    "search.mcts.max_simulations": NON_NEGATIVE,
    # learners
    "learn.rft.max_per_problem": POSITIVE,
    "learn.dpo.min_margin": NON_NEGATIVE,
    "learn.dpo.max_pairs_per_problem": NON_NEGATIVE,
    "learn.dpo.beta": POSITIVE,
    "learn.grpo.num_generations": Range(2),  # a group needs two to compare
    "learn.grpo.max_completion_length": POSITIVE,
    "learn.grpo.temperature": POSITIVE,
    "learn.grpo.beta": NON_NEGATIVE,
    "learn.grpo.epsilon": POSITIVE,
    "learn.grpo.num_iterations": POSITIVE,
    "learn.grpo.*_weight": NON_NEGATIVE,
    "learn.grpo.vllm_gpu_memory_utilization": PROBABILITY_MASS,
    # reward model and labelling
    "prm.problems_per_round": NON_NEGATIVE,  # 0: all
    "prm.solutions_per_problem": POSITIVE,
    "prm.rollouts": POSITIVE,
    "prm.max_steps": POSITIVE,
    "prm.max_new_tokens": POSITIVE,
    "prm.eval_fraction": Range(0, 1, high_open=True),
    "prm.corrupt_steps": NON_NEGATIVE,
    "prm.rerank_n": POSITIVE,
    "prm.rerank_problems": NON_NEGATIVE,
    "prm.min_solve_rate": FRACTION,
    "prm.max_solve_rate": FRACTION,
    "prm.implicit.beta": POSITIVE,
    "prm.implicit_step.beta": POSITIVE,
    "prm.implicit.pairwise_weight": NON_NEGATIVE,
    "prm.implicit_step.pairwise_weight": NON_NEGATIVE,
    # evaluation
    "eval.num_problems": NON_NEGATIVE,  # 0: the whole split
    "eval.k": NON_NEGATIVE,  # 0: greedy only
    "eval.max_new_tokens": POSITIVE,
    "eval.scaling.budgets": POSITIVE,
    "eval.scaling.num_problems": NON_NEGATIVE,
    # execution
    "execution.shards": POSITIVE,
    "execution.block_size": POSITIVE,
    "execution.max_workers": NON_NEGATIVE,
    "execution.ray_num_cpus": NON_NEGATIVE,
    "execution.cpus_per_shard": POSITIVE,
    "execution.gpus_per_shard": NON_NEGATIVE,
    "execution.train_processes": POSITIVE,
}


def numeric_settings(flat: dict[str, object]) -> Iterator[tuple[str, float]]:
    """(key, number) for every numeric value of a flattened config, list entries included."""
    for key, value in flat.items():
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                yield key, v


def rules_for(key: str) -> list[Range]:
    return [rng for pattern, rng in RULES.items() if fnmatchcase(key, pattern)]


def range_errors(flat: dict[str, object]) -> Iterator[str]:
    """One message per value out of range, naming its key."""
    for key, value in numeric_settings(flat):
        for rng in rules_for(key):
            if value not in rng:
                yield f"{key} must be {rng}, got {value}"
