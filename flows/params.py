"""Parameter types the flows share, so every run form offers the same choices."""

from __future__ import annotations

from typing import Literal

from searchlearn.config import ConfigError, available_experiments


def _shipped_variants():
    """The run forms' choice of experiment: the variants in conf/experiment/ when the
    flow module is imported (`prefect deploy` imports it, so a new variant shows
    after a redeploy). Free text where no conf/ directory is found."""
    try:
        names = tuple(available_experiments())
    except ConfigError:
        names = ()
    return Literal[names] if names else str


ExperimentName = _shipped_variants()

def experiment_source(experiment: str, experiment_file: str | None) -> str:
    """What load_config gets: the YAML file when one is given, else the variant name."""
    if experiment_file and not experiment_file.endswith((".yaml", ".yml")):
        raise ConfigError(f"experiment_file must be a .yaml file, got {experiment_file!r}")
    return experiment_file or experiment
