"""Blocks and shards: how search and labelling split a round's problems.

The unit of work is a *block* of `block_size` consecutive problems. Each block is
batched through the generator on its own and samples from its own seed, so its
results depend only on (seed, round, stage, block) and never on which worker ran
it or what else ran beside it. A *shard* is a contiguous run of whole blocks
given to one task; changing the shard count (or the task runner) only moves
blocks between workers, which is why results do not depend on it.
"""

from __future__ import annotations

from typing import Sequence, TypeVar

T = TypeVar("T")


def num_blocks(num_items: int, block_size: int) -> int:
    if block_size <= 0:
        raise ValueError(f"block_size must be > 0, got {block_size}")
    return max(1, -(-num_items // block_size))


def block(items: Sequence[T], index: int, block_size: int) -> list[T]:
    """The `index`-th block of `items` (the last one may be short)."""
    return list(items[index * block_size: (index + 1) * block_size])


def plan_shards(num_items: int, block_size: int, shards: int) -> list[list[int]]:
    """Block indices per shard: contiguous, sizes differing by at most one block,
    no empty shard (fewer shards than asked when there are fewer blocks)."""
    if shards <= 0:
        raise ValueError(f"shards must be > 0, got {shards}")
    total = num_blocks(num_items, block_size)
    shards = min(shards, total)
    base, extra = divmod(total, shards)
    plan, start = [], 0
    for i in range(shards):
        size = base + (1 if i < extra else 0)
        plan.append(list(range(start, start + size)))
        start += size
    return plan


def check_covers(shard_blocks: Sequence[Sequence[int]], what: str) -> None:
    """A merge's shards must hold blocks 0..k-1, each once, in order: a shard lost,
    repeated or out of order would silently drop, duplicate or reorder data."""
    blocks = [b for shard in shard_blocks for b in shard]
    if blocks != list(range(len(blocks))):
        raise ValueError(f"{what} shards cover blocks {blocks}, not 0..{len(blocks) - 1} in order")


def block_seed(seed: int, round_index: int, stage_seed: int, block_index: int) -> int:
    """The sampling seed of one block of one stage of one round. Block 0 keeps the
    pre-sharding stage seed, so a run of one block samples as it always did."""
    return seed * 1000 + round_index * 10 + stage_seed + block_index * 1_000_003
