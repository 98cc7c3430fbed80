from searchlearn.config.load import (
    ConfigError,
    available_experiments,
    flatten,
    load_config,
    to_yaml,
    validate,
)
from searchlearn.config.schema import ExperimentConfig

__all__ = ["ConfigError", "ExperimentConfig", "available_experiments", "flatten", "load_config", "to_yaml", "validate"]
