"""Shared plumbing for stages: produce-once output directories, config slices,
the per-stage generator and scorer."""

from __future__ import annotations

import contextvars
import json
import logging
import os
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from searchlearn.artifacts import artifact_ref, atomic_dir, atomic_write_json, is_complete_dir
from searchlearn.memory import release_heap
from searchlearn.sharding import block_seed

log = logging.getLogger("searchlearn")
STAGE_FILE = "stage.json"

# Set by Stage.run for the duration of one stage. A context variable, not an
# argument, so stage functions keep their path-in/path-out signatures for scripts.
_REFRESH = contextvars.ContextVar("searchlearn_refresh", default=False)


@contextmanager
def refreshing(on: bool) -> Iterator[None]:
    """Within this block, produce() rebuilds complete outputs instead of reusing them."""
    token = _REFRESH.set(on)
    try:
        yield
    finally:
        _REFRESH.reset(token)


def produce(out_dir: str | Path, build: Callable[[Path], dict]) -> dict:
    """Run `build(tmp_dir) -> metrics` unless `out_dir` is already complete (and no
    refresh was asked for: then the new output replaces the old one atomically).

    The metrics are saved as stage.json inside the directory so a reused output
    returns exactly what the original run returned.
    """
    out_dir = Path(out_dir)
    if is_complete_dir(out_dir) and not _REFRESH.get():
        log.info("reusing completed stage output %s", out_dir)
        meta = read_stage_meta(out_dir)
    else:
        try:
            with atomic_dir(out_dir) as tmp:
                meta = build(tmp)
                atomic_write_json(tmp / STAGE_FILE, meta)
        finally:  # the stage's models and batches are garbage now: give their memory back
            release_heap()
    return artifact_ref(out_dir, **meta)


def read_stage_meta(out_dir: str | Path) -> dict:
    """The metrics a completed stage saved beside its outputs."""
    return json.loads((Path(out_dir) / STAGE_FILE).read_text())


def section(node) -> dict:
    """A config section as a plain dict: what stages take and what their keys hash."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(node, resolve=True)


def active(node, choice: str, families) -> dict:
    """A config section with only the selected algorithm's subsection kept, so tuning
    an algorithm that is not in use does not invalidate cached stages."""
    d = section(node)
    return {k: v for k, v in d.items() if k not in families or k == d[choice]}


def training_launch(cfg) -> dict | None:
    """How training stages run: in this process (None) or under accelerate launch.
    Part of every training stage's key: N processes take N-times-larger steps."""
    from searchlearn.learn.launch import launch_settings

    return launch_settings(section(cfg.execution))


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
    """The StepScorer saved by a train-reward-model stage, with the step check its
    reference carries (stages.stage.scorer_ref_of; None passes through)."""
    if scorer_ref is None:
        return None
    from searchlearn.generation import exclusive
    from searchlearn.reward import load_scorer
    from searchlearn.reward.checks import with_step_check

    with exclusive():
        scorer = load_scorer(kind or scorer_ref["kind"], str(Path(scorer_ref["path"]) / "model"))
    return with_step_check(scorer, scorer_ref.get("step_check", "none"))
