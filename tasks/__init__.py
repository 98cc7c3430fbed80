"""Prefect tasks: one generic cached task that runs a declared stage (stage.py),
the fan-out of sharded stages over a task runner (fanout.py), and fetching a
policy to evaluate (registry.py).

Tasks take a stage declaration (config slices, seeds, upstream content hashes)
and a run directory, and return an artifact reference `{"path", "sha", **metrics}`.
Models and tensors never cross a task boundary.
"""

from tasks.fanout import fanout, label_steps, search_for_data
from tasks.stage import run

__all__ = ["fanout", "label_steps", "run", "search_for_data"]
