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
