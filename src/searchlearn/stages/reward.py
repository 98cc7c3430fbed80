"""Stages: label steps of this round's search data, then (re)train the reward model."""

from __future__ import annotations

import random
from pathlib import Path

from searchlearn.problems.base import iter_jsonl
from searchlearn.stages.common import produce, stage_generator

LABELS_FILE = "labelled_steps.jsonl"


def label_steps(policy_dir: str, search_dir: str, prm_cfg: dict, gen_cfg: dict, seed: int,
                out_dir: str | Path) -> dict:
    """Math-Shepherd MC labels (kind=prm) or verifier outcome labels (kind=orm; no
    rollouts), for the first `problems_per_round` searched problems."""
    from searchlearn.reward.labels import label_round, write_labelled_steps
    from searchlearn.reward.orm import outcome_rows

    def build(tmp: Path) -> dict:
        results = [row for _, row in iter_jsonl(Path(search_dir) / "results.jsonl")]
        if prm_cfg["problems_per_round"]:
            results = results[: prm_cfg["problems_per_round"]]
        if prm_cfg["kind"] == "orm":
            rows, stats = outcome_rows(results, prm_cfg["solutions_per_problem"]), {"tokens": 0}
        else:
            generator = stage_generator(policy_dir, gen_cfg, seed, "labels")
            rows, stats = label_round(generator, prm_cfg, results=results)
        write_labelled_steps(tmp / LABELS_FILE, rows)
        # Outcome rows for an optional ORM trained alongside the PRM (same searched data).
        write_labelled_steps(tmp / "outcome_rows.jsonl", outcome_rows(results, prm_cfg["solutions_per_problem"]))
        return {"labels.rows": len(rows), **{f"labels.{k}": v for k, v in stats.items()
                                              if isinstance(v, (int, float))}}

    return produce(out_dir, build)


def split_by_problem(rows: list[dict], eval_fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """Hold out whole problems (not steps) so eval AUC measures generalisation."""
    ids = sorted({r["problem_id"] for r in rows})
    random.Random(seed).shuffle(ids)
    held = set(ids[: int(len(ids) * eval_fraction)])
    return [r for r in rows if r["problem_id"] not in held], [r for r in rows if r["problem_id"] in held]


def train_reward_model(init_dir: str, label_dirs: list[str], prm_cfg: dict, seed: int, out_dir: str | Path,
                       kind: str | None = None) -> dict:
    """Train on the labels accumulated over all rounds so far, warm-starting from
    `init_dir` (last round's reward model, or the policy)."""
    from searchlearn.reward.labels import read_labelled_steps
    from searchlearn.reward.prm_train import train_prm

    kind = kind or prm_cfg["kind"]
    name = LABELS_FILE if kind == "prm" else "outcome_rows.jsonl"

    def build(tmp: Path) -> dict:
        rows = [r for d in label_dirs for r in read_labelled_steps(Path(d) / name)]
        train_rows, eval_rows = split_by_problem(rows, prm_cfg["eval_fraction"], seed)
        metrics = train_prm(init_dir, train_rows, prm_cfg["train"], str(tmp / "model"), seed=seed,
                            eval_rows=eval_rows or None, target=kind)
        return {"kind": kind, **{f"{kind}.{k}": v for k, v in metrics.items() if isinstance(v, (int, float, str))}}

    return produce(out_dir, build)
