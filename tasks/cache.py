"""The cache contract shared by every stage task.

A task's cache key is its inputs (config section, upstream artifact hashes,
seeds) + the task's source + the source of the core modules it runs. Its output
directory is derived from the same inputs and core code, so a stage whose
Prefect result was lost still finds its completed output instead of recomputing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import import_module
from pathlib import Path
from typing import Any, Optional

from prefect.cache_policies import INPUTS, TASK_SOURCE, CachePolicy

from searchlearn.artifacts import stage_dir


@lru_cache(maxsize=None)
def code_hash(modules: tuple[str, ...]) -> str:
    """Hash of the source files of the given modules/packages (packages: all .py below)."""
    h = hashlib.sha256()
    for name in modules:
        mod = import_module(name)
        root = Path(mod.__file__)
        files = sorted(root.parent.rglob("*.py")) if root.name == "__init__.py" else [root]
        for f in files:
            h.update(str(f.name).encode())
            h.update(f.read_bytes())
    return h.hexdigest()


@dataclass
class CoreCode(CachePolicy):
    """Cache-key component: the core code a task runs, not only the wrapper's source."""

    modules: tuple[str, ...] = field(default_factory=tuple)

    def compute_key(self, task_ctx, inputs: dict[str, Any], flow_parameters: dict[str, Any],
                    **kwargs: Any) -> Optional[str]:
        return code_hash(self.modules)


def cached(*modules: str) -> dict:
    """Task options: persisted results, cached across flow runs (no RUN_ID in the key)."""
    return {"persist_result": True, "cache_policy": INPUTS + TASK_SOURCE + CoreCode(modules=tuple(modules)),
            "retries": 0}


def output_dir(run_dir: str, stage: str, modules: tuple[str, ...], **inputs: Any) -> Path:
    return stage_dir(run_dir, stage, code=code_hash(modules), **inputs)
