"""The recipe's stages as plain functions over paths and small dicts.

Each stage writes one directory atomically (see artifacts.atomic_dir) and
returns an artifact reference `{"path", "sha", **metrics}`. Stages are
idempotent: a completed output directory is reused, so a crashed run resumes
even without orchestration state. Prefect tasks (top-level `tasks/`) wrap these
one-to-one; notebooks and scripts can call them directly.
"""
