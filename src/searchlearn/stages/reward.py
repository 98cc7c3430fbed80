"""Stages: label steps of this round's search data, then (re)train the reward model."""

from __future__ import annotations

import random
from pathlib import Path

from searchlearn.problems.base import iter_jsonl
from searchlearn.sharding import block, check_covers
from searchlearn.stages.common import produce, read_stage_meta, section, stage_generator, training_launch, worker_id
from searchlearn.stages.stage import Stage, path_of

LABELS_FILE = "labelled_steps.jsonl"
OUTCOME_FILE = "outcome_rows.jsonl"
ADDITIVE_STATS = ("solutions", "truncated_solutions", "final_from_verifier", "witnessed_steps", "prefixes",
                  "rollouts", "tokens", "generate_seconds")


def labelled_count(cfg, search_data: dict) -> int:
    """How many of the round's searched problems get labelled (prm.problems_per_round, 0 = all)."""
    count = search_data["search.problems"]
    return min(count, cfg.prm.problems_per_round) if cfg.prm.problems_per_round else count


def label_shard_stage(cfg, policy: dict, search_data: dict, round_index: int, block_size: int,
                      blocks: list[int]) -> Stage:
    """label-shard: Monte-Carlo step labels for some blocks of the round's searched problems."""
    return Stage("label-shard", "labels-shards", label_shard,
                 {"policy_dir": path_of(policy, "model"), "search_dir": path_of(search_data),
                  "prm_cfg": section(cfg.prm), "gen_cfg": section(cfg.generation), "seed": cfg.seed,
                  "round_index": round_index, "block_size": block_size, "blocks": blocks}, round=round_index)


def merge_labels_stage(shards: list[dict], round_index: int) -> Stage:
    """label-steps: the round's labelled steps, its shards' rows in problem order."""
    return Stage("label-steps", "labels", merge_labels, {"shard_dirs": [path_of(s) for s in shards]},
                 round=round_index)


def reward_model_stage(cfg, init: dict, labels: list[dict], kind: str, round_index: int) -> Stage:
    """train-reward-model: a PRM or ORM on every round's labels so far, warm-started from `init`."""
    return Stage("train-reward-model", kind, train_reward_model,
                 {"init_dir": path_of(init, "model"), "label_dirs": [path_of(ref) for ref in labels],
                  "prm_cfg": section(cfg.prm), "seed": cfg.seed, "kind": kind, "launch": training_launch(cfg)},
                 round=round_index)


def labelled_results(search_dir: str, prm_cfg: dict) -> list[dict]:
    """The searched problems whose solutions get labelled this round, in order."""
    results = [row for _, row in iter_jsonl(Path(search_dir) / "results.jsonl")]
    return results[: prm_cfg["problems_per_round"]] if prm_cfg["problems_per_round"] else results


def label_shard(policy_dir: str, search_dir: str, prm_cfg: dict, gen_cfg: dict, seed: int, round_index: int,
                block_size: int, blocks: list[int], out_dir: str | Path) -> dict:
    """Math-Shepherd MC labels (kind=prm) or verifier outcome labels (kind=orm; no
    rollouts) for the given blocks of the labelled problems, each block seeded on
    its own (see searchlearn.sharding)."""
    from searchlearn.reward.labels import label_round, write_labelled_steps
    from searchlearn.reward.orm import outcome_rows

    def build(tmp: Path) -> dict:
        results = labelled_results(search_dir, prm_cfg)
        # Outcome rows (the ORM's labels, also kept beside a PRM's for an ORM trained alongside).
        outcomes = outcome_rows([r for b in blocks for r in block(results, b, block_size)],
                                prm_cfg["solutions_per_problem"])
        rows, stats = (outcomes, []) if prm_cfg["kind"] == "orm" else ([], [])
        if prm_cfg["kind"] == "prm":
            for b in blocks:
                with stage_generator(policy_dir, gen_cfg, seed, "labels", round_index, b) as generator:
                    block_rows, block_stats = label_round(generator, prm_cfg, block(results, b, block_size))
                rows += block_rows
                stats.append(block_stats)
        write_labelled_steps(tmp / LABELS_FILE, rows)
        write_labelled_steps(tmp / OUTCOME_FILE, outcomes)
        return {"blocks": blocks, "counts": _sum_counts(stats), "worker": worker_id()}

    return produce(out_dir, build)


def merge_labels(shard_dirs: list[str], out_dir: str | Path) -> dict:
    """One round's labelled steps from its shards, in problem order."""
    from searchlearn.reward.labels import read_labelled_steps, summarize_labels, write_labelled_steps

    def build(tmp: Path) -> dict:
        metas = [read_stage_meta(d) for d in shard_dirs]
        check_covers([m["blocks"] for m in metas], "label")
        rows = [r for d in shard_dirs for r in read_labelled_steps(Path(d) / LABELS_FILE)]
        write_labelled_steps(tmp / LABELS_FILE, rows)
        write_labelled_steps(tmp / OUTCOME_FILE,
                             [r for d in shard_dirs for r in read_labelled_steps(Path(d) / OUTCOME_FILE)])
        stats = {**_sum_counts([m["counts"] for m in metas]), **summarize_labels(rows)}
        return {"labels.rows": len(rows), "labels.shards": len(metas),
                "labels.workers": len({m["worker"] for m in metas}),
                **{f"labels.{k}": v for k, v in stats.items() if isinstance(v, (int, float))}}

    return produce(out_dir, build)


def _sum_counts(stats: list[dict]) -> dict:
    """Add up the additive label statistics of several blocks (ratios are recomputed
    from the merged rows instead)."""
    total: dict = {"tokens": 0}
    for st in stats:
        for k, v in st.items():
            if k in ADDITIVE_STATS:
                total[k] = total.get(k, 0) + v
    return total


def split_by_problem(rows: list[dict], eval_fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """Hold out whole problems (not steps) so eval AUC measures generalisation."""
    ids = sorted({r["problem_id"] for r in rows})
    random.Random(seed).shuffle(ids)
    held = set(ids[: int(len(ids) * eval_fraction)])
    return [r for r in rows if r["problem_id"] not in held], [r for r in rows if r["problem_id"] in held]


def train_reward_model(init_dir: str, label_dirs: list[str], prm_cfg: dict, seed: int, out_dir: str | Path,
                       kind: str | None = None, launch: dict | None = None) -> dict:
    """Train on the labels accumulated over all rounds so far, warm-starting from
    `init_dir` (last round's reward model, or the policy). `launch`: accelerate
    launch settings (learn/launch.py); None trains in this process."""
    from searchlearn.learn.launch import run_training

    kind = kind or prm_cfg["kind"]

    def build(tmp: Path) -> dict:
        spec = {"init_dir": init_dir, "label_dirs": label_dirs, "prm_cfg": prm_cfg, "seed": seed, "kind": kind,
                "out_dir": str(tmp / "model")}
        metrics = run_training(reward_job, spec, launch)
        return {"kind": kind, **{f"{kind}.{k}": v for k, v in metrics.items() if isinstance(v, (int, float, str))}}

    return produce(out_dir, build)


def reward_job(spec: dict) -> dict:
    """Training job: a PRM or ORM on the given rounds' labels, some problems held out."""
    from searchlearn.reward.labels import read_labelled_steps
    from searchlearn.reward.prm_train import train_prm

    kind, prm_cfg = spec["kind"], spec["prm_cfg"]
    name = LABELS_FILE if kind == "prm" else OUTCOME_FILE
    rows = [r for d in spec["label_dirs"] for r in read_labelled_steps(Path(d) / name)]
    train_rows, eval_rows = split_by_problem(rows, prm_cfg["eval_fraction"], spec["seed"])
    return train_prm(spec["init_dir"], train_rows, prm_cfg["train"], spec["out_dir"], seed=spec["seed"],
                     eval_rows=eval_rows or None, target=kind)
