"""Shared plumbing for stages: produce-once output directories."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Callable

from searchlearn.artifacts import artifact_ref, atomic_dir, atomic_write_json, is_complete_dir

log = logging.getLogger("searchlearn")
STAGE_FILE = "stage.json"


def produce(out_dir: str | Path, build: Callable[[Path], dict]) -> dict:
    """Run `build(tmp_dir) -> metrics` unless `out_dir` is already complete.

    The metrics are saved as stage.json inside the directory so a reused output
    returns exactly what the original run returned.
    """
    out_dir = Path(out_dir)
    if is_complete_dir(out_dir):
        log.info("reusing completed stage output %s", out_dir)
        meta = json.loads((out_dir / STAGE_FILE).read_text())
    else:
        with atomic_dir(out_dir) as tmp:
            meta = build(tmp)
            atomic_write_json(tmp / STAGE_FILE, meta)
    return artifact_ref(out_dir, **meta)


STAGE_SEEDS = {"search": 1, "eval": 2, "labels": 3, "rerank": 4}


def stage_generator(policy_dir: str, gen_cfg: dict, seed: int, stage: str, round_index: int = 0):
    """The process's generator for this policy, its sampling stream restarted from a
    seed of this (stage, round): one engine serves consecutive stages, and a cached
    stage skips its generate calls, so without the reseed a resumed run would sample
    differently from an uninterrupted one."""
    from searchlearn.generation import get_generator

    generator = get_generator(policy_dir, gen_cfg, seed)
    generator.reseed(seed * 1000 + round_index * 10 + STAGE_SEEDS[stage])
    return generator


def load_scorer_ref(scorer_ref: dict | None, kind: str | None = None):
    """The StepScorer saved by a train-reward-model stage (None passes through)."""
    if scorer_ref is None:
        return None
    from searchlearn.reward import load_scorer

    return load_scorer(kind or scorer_ref["kind"], str(Path(scorer_ref["path"]) / "model"))
