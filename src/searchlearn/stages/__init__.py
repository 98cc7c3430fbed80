"""The recipe's stages as plain functions over paths and small dicts.

Each stage writes one directory atomically (see artifacts.atomic_dir) and
returns an artifact reference `{"path", "sha", **metrics}`. Stages are
idempotent: a completed output directory is reused, so a crashed run resumes
even without orchestration state. Each module also declares its stages from the
config (stage.py: Stage, with the config slice the stage owns); the Prefect task
in top-level `tasks/stage.py` runs any declared stage. Notebooks and scripts can
call the stage functions directly, or `Stage.run(run_dir)`.
"""
