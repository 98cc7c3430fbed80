"""Shared plumbing for stages: produce-once output directories."""

from __future__ import annotations

import json
import logging
import os
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from searchlearn.artifacts import artifact_ref, atomic_dir, atomic_write_json, is_complete_dir
from searchlearn.sharding import block_seed

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
        meta = read_stage_meta(out_dir)
    else:
        with atomic_dir(out_dir) as tmp:
            meta = build(tmp)
            atomic_write_json(tmp / STAGE_FILE, meta)
    return artifact_ref(out_dir, **meta)


def read_stage_meta(out_dir: str | Path) -> dict:
    """The metrics a completed stage saved beside its outputs."""
    return json.loads((Path(out_dir) / STAGE_FILE).read_text())


STAGE_SEEDS = {"search": 1, "eval": 2, "labels": 3, "rerank": 4, "scaling": 5}


@contextmanager
def stage_generator(policy_dir: str, gen_cfg: dict, seed: int, stage: str, round_index: int = 0,
                    block_index: int = 0):
    """The process's generator for this policy, held by this thread, its sampling
    stream restarted from the seed of this (stage, round, block): one engine serves
    consecutive stages and a cached stage skips its generate calls, so without the
    reseed a resumed run would sample differently from an uninterrupted one."""
    from searchlearn.generation import using_generator

    with using_generator(policy_dir, gen_cfg, seed) as generator:
        generator.reseed(block_seed(seed, round_index, STAGE_SEEDS[stage], block_index))
        yield generator


def worker_id() -> str:
    """host:pid of the process that ran a shard (recorded in its stage.json)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def load_scorer_ref(scorer_ref: dict | None, kind: str | None = None):
    """The StepScorer saved by a train-reward-model stage (None passes through)."""
    if scorer_ref is None:
        return None
    from searchlearn.generation import exclusive
    from searchlearn.reward import load_scorer

    with exclusive():
        return load_scorer(kind or scorer_ref["kind"], str(Path(scorer_ref["path"]) / "model"))
