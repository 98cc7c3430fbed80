"""What ties a flow run to its MLflow run, both ways: the MLflow run is tagged with the
command, the overrides and the Prefect flow run (id, name, UI link); the flow run
gets a markdown artifact with the run's summary and a link to its MLflow page.
Prefect is only called from here and the flows, never from the core package."""

from __future__ import annotations

import re
import shlex
from typing import Sequence


def cli_command(*words: str) -> str:
    """The `searchlearn` command line that repeats a flow run."""
    return shlex.join(["searchlearn", *words])


def flow_run_tags(command: str | None, overrides: Sequence[str]) -> dict[str, str]:
    """MLflow tags naming the command (where the CLI has one), the overrides and the
    Prefect flow run behind an MLflow run."""
    from prefect.runtime import flow_run
    from prefect.utilities.urls import url_for

    tags = {"searchlearn.overrides": " ".join(overrides) or "(none)"}
    if command:
        tags["searchlearn.command"] = command
    if flow_run.id:
        tags.update({"prefect.flow_run_id": flow_run.id, "prefect.flow_run_name": flow_run.name or ""})
        url = url_for("flow-run", obj_id=flow_run.id)
        if url:
            tags["prefect.flow_run_url"] = url
    return tags


def publish_summary(experiment: str, markdown: str) -> None:
    """The run's summary as a markdown artifact of the flow run (the UI's Artifacts
    tab); its key groups every run of one experiment in the Artifacts page."""
    from prefect.artifacts import create_markdown_artifact

    key = re.sub(r"[^a-z0-9-]+", "-", experiment.lower()).strip("-") + "-summary"
    create_markdown_artifact(markdown=markdown, key=key,
                             description=f"search-and-learn summary of {experiment}, linked to its MLflow run")
