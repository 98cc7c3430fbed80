"""Stage: search for solutions to one round's training problems with the current
policy (and scorer, if any), verifying every candidate. Shards of blocks run as
separate tasks (possibly on other machines); a merge writes the round's data."""

from __future__ import annotations

import time
from pathlib import Path

from searchlearn.artifacts import write_jsonl
from searchlearn.problems.base import iter_jsonl, write_problems
from searchlearn.search import ALGORITHMS, BestOfN, SearchBudget
from searchlearn.search.base import SearchResult
from searchlearn.sharding import block, check_covers
from searchlearn.stages.common import (active, load_scorer_ref, log, produce, read_stage_meta, section,
                                       stage_generator, worker_id)
from searchlearn.stages.data import round_problems
from searchlearn.stages.stage import Stage, path_of, scorer_ref_of


def search_config(cfg) -> dict:
    """`search:` with only the chosen algorithm's own section (search.<algorithm>):
    tuning an algorithm that is not in use must not re-run searches."""
    return active(cfg.search, "algorithm", [name for name in ALGORITHMS if name in cfg.search])


def shard_stage(cfg, policy: dict, problems: dict, scorer: dict | None, round_index: int, block_size: int,
                blocks: list[int]) -> Stage:
    """search-shard: some blocks of this round's problems, searched with the policy
    (and the scorer, where the algorithm reads one: best-of-N by majority vote never
    does, so it neither spends time scoring candidates nor re-runs when the reward
    model changes)."""
    search_cfg = search_config(cfg)
    if not build_algorithm(search_cfg).needs_scorer:
        scorer = None
    return Stage("search-shard", "search-shards", search_shard,
                 {"policy_dir": path_of(policy, "model"), "data_dir": path_of(problems),
                  "search_cfg": search_cfg, "gen_cfg": section(cfg.generation),
                  "scorer_ref": scorer_ref_of(scorer, cfg.prm.step_check),
                  "seed": cfg.seed, "round_index": round_index, "block_size": block_size, "blocks": blocks},
                 round=round_index)


def merge_stage(cfg, shards: list[dict], problems: dict, round_index: int) -> Stage:
    """search-for-data: the round's search data, its shards' results in problem order."""
    return Stage("search-for-data", "search", merge_search,
                 {"shard_dirs": [path_of(s) for s in shards], "data_dir": path_of(problems),
                  "search_cfg": search_config(cfg), "seed": cfg.seed, "round_index": round_index},
                 round=round_index)


def build_algorithm(search_cfg: dict, has_scorer: bool = True):
    """The configured algorithm (it reads its own settings). Before the first reward
    model exists (round 1), a scorer-guided search falls back to best-of-N with
    majority vote: there is nothing to guide it yet."""
    algorithm = ALGORITHMS[search_cfg["algorithm"]].from_config(search_cfg)
    if algorithm.needs_scorer and not has_scorer:
        log.info("no reward model yet: %s falls back to best_of_n (majority) this round", algorithm.name)
        return BestOfN(selection="majority")
    return algorithm


def search_problems(data_dir: str, search_cfg: dict, seed: int, round_index: int):
    """This round's training problems, in the order blocks are cut from."""
    return round_problems(data_dir, search_cfg["problems_per_round"], seed * 1000 + round_index)


def search_shard(
    policy_dir: str, data_dir: str, search_cfg: dict, gen_cfg: dict, scorer_ref: dict | None,
    seed: int, round_index: int, block_size: int, blocks: list[int], out_dir: str | Path,
) -> dict:
    """Search the given blocks of this round's problems; each block is batched and
    seeded on its own (see searchlearn.sharding), so the shard layout never shows
    in the results."""
    def build(tmp: Path) -> dict:
        problems = search_problems(data_dir, search_cfg, seed, round_index)
        scorer = load_scorer_ref(scorer_ref)
        algorithm = build_algorithm(search_cfg, has_scorer=scorer is not None)
        results, seconds = [], 0.0
        for b in blocks:
            with stage_generator(policy_dir, gen_cfg, seed, "search", round_index, b) as generator:
                start = time.perf_counter()
                results += algorithm.search(block(problems, b, block_size), generator, scorer,
                                            SearchBudget.from_config(search_cfg))
                seconds += time.perf_counter() - start
        write_jsonl(tmp / "results.jsonl", (r.to_dict() for r in results))
        return {"blocks": blocks, "seconds": round(seconds, 3), "algorithm": algorithm.name, "worker": worker_id()}

    return produce(out_dir, build)


def merge_search(shard_dirs: list[str], data_dir: str, search_cfg: dict, seed: int, round_index: int,
                 out_dir: str | Path) -> dict:
    """One round's search data from its shards, in problem order: problems.jsonl +
    results.jsonl, the same files whatever the shard count."""
    def build(tmp: Path) -> dict:
        metas = [read_stage_meta(d) for d in shard_dirs]
        check_covers([m["blocks"] for m in metas], "search")
        rows = [row for d in shard_dirs for _, row in iter_jsonl(Path(d) / "results.jsonl")]
        problems = search_problems(data_dir, search_cfg, seed, round_index)
        if [row["problem_id"] for row in rows] != [p.id for p in problems]:
            raise ValueError(f"search shards {shard_dirs} do not hold this round's problems in order")
        write_problems(tmp / "problems.jsonl", problems)
        write_jsonl(tmp / "results.jsonl", rows)
        seconds = sum(m["seconds"] for m in metas)
        return {**search_stats([SearchResult.from_dict(r) for r in rows], seconds),
                "search.algorithm": metas[0]["algorithm"], "search.shards": len(metas),
                "search.workers": len({m["worker"] for m in metas})}

    return produce(out_dir, build)


def search_stats(results, seconds: float) -> dict:
    n = max(len(results), 1)
    cands = [c for r in results for c in r.candidates]
    tokens = sum(r.tokens for r in results)
    return {
        "search.problems": len(results),
        "search.solved": sum(r.solved for r in results) / n,
        "search.any_correct": sum(any(c.correct for c in r.candidates) for r in results) / n,
        "search.candidate_acc": sum(bool(c.correct) for c in cands) / max(len(cands), 1),
        "search.tokens": tokens,
        "search.seconds": round(seconds, 2),  # summed over shards: compute time, not wall time
        "search.tokens_per_s": round(tokens / seconds, 1) if seconds > 0 else 0.0,
    }
