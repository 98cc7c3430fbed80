"""Block and shard planning: every block exactly once, in order, whatever the shard count."""

from __future__ import annotations

import pytest

from searchlearn.sharding import block, block_seed, check_covers, num_blocks, plan_shards


@pytest.mark.parametrize("items,size,shards", [(16, 4, 1), (16, 4, 3), (17, 4, 2), (5, 32, 4), (96, 32, 3),
                                               (1, 1, 1), (100, 7, 6)])
def test_plan_covers_every_block_once_in_order(items, size, shards):
    plan = plan_shards(items, size, shards)
    assert [b for shard in plan for b in shard] == list(range(num_blocks(items, size)))
    assert all(plan) and len(plan) == min(shards, num_blocks(items, size))
    sizes = [len(s) for s in plan]
    assert max(sizes) - min(sizes) <= 1


def test_blocks_partition_the_items():
    items = list(range(17))
    assert [x for b in range(num_blocks(17, 4)) for x in block(items, b, 4)] == items
    assert block(items, 4, 4) == [16]


def test_block_zero_keeps_the_stage_seed_and_blocks_differ():
    assert block_seed(3, 2, 1, 0) == 3 * 1000 + 2 * 10 + 1
    seeds = {block_seed(0, r, s, b) for r in range(4) for s in range(1, 5) for b in range(50)}
    assert len(seeds) == 4 * 4 * 50


@pytest.mark.parametrize("bad", [dict(items=4, size=0, shards=1), dict(items=4, size=2, shards=0)])
def test_bad_sizes_are_rejected(bad):
    with pytest.raises(ValueError):
        plan_shards(bad["items"], bad["size"], bad["shards"])


def test_merges_refuse_shards_that_lose_repeat_or_reorder_blocks():
    check_covers([[0, 1], [2]], "label")
    check_covers(plan_shards(100, 32, 3), "search")
    for bad in ([[0], [2]], [[0, 1], [1]], [[1], [0]], [[1, 2]]):
        with pytest.raises(ValueError, match=r"label shards cover blocks .* not 0\.\."):
            check_covers(bad, "label")
