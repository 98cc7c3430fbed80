"""Load an experiment: schema <- conf/base.yaml <- conf/experiment/<name>.yaml <- CLI
dotlist overrides, then validate. Every failure is a ConfigError that names the
key, file or variant, raised before any model or dataset is touched."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Sequence

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from searchlearn.config.schema import ExperimentConfig


class ConfigError(ValueError):
    pass


def conf_dir(explicit: str | Path | None = None) -> Path:
    """Explicit path, else $SEARCHLEARN_CONF_DIR, else ./conf, else the repo's conf/."""
    candidates = [explicit, os.environ.get("SEARCHLEARN_CONF_DIR"), Path.cwd() / "conf",
                  Path(__file__).resolve().parents[3] / "conf"]
    for c in candidates:
        if c and (Path(c) / "base.yaml").is_file():
            return Path(c)
    raise ConfigError("no config directory with base.yaml found (set SEARCHLEARN_CONF_DIR)")


def available_experiments(conf: str | Path | None = None) -> list[str]:
    return sorted(p.stem for p in (conf_dir(conf) / "experiment").glob("*.yaml"))


def experiment_path(experiment: str, conf: str | Path | None = None) -> Path:
    """A variant name from conf/experiment/, or a path to a YAML file."""
    if experiment.endswith((".yaml", ".yml")):
        path = Path(experiment)
        if not path.is_file():
            raise ConfigError(f"experiment file not found: {path}")
        return path
    path = conf_dir(conf) / "experiment" / f"{experiment}.yaml"
    if not path.is_file():
        raise ConfigError(
            f"unknown experiment {experiment!r}; available: {', '.join(available_experiments(conf))}"
        )
    return path


def _merge(base: DictConfig, other, source: str) -> DictConfig:
    try:
        return OmegaConf.merge(base, other)
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None) or "?"
        msg = getattr(e, "msg", None) or str(e).splitlines()[0]
        raise ConfigError(f"{source}: bad config key {key!r}: {msg}") from None


def _load_yaml(path: Path) -> DictConfig:
    try:
        cfg = OmegaConf.load(path)
    except Exception as e:  # yaml.YAMLError and friends: name the file
        raise ConfigError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(cfg, DictConfig):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return cfg


def _experiment_layers(path: Path, conf) -> list[tuple[Path, DictConfig]]:
    """An experiment YAML may start from another variant with `inherit: <name>`;
    returns the chain, root first, with the `inherit` keys removed."""
    layers: list[tuple[Path, DictConfig]] = []
    seen: set[Path] = set()
    while path is not None:
        if path in seen:
            raise ConfigError(f"{path}: inherit cycle")
        seen.add(path)
        layer = _load_yaml(path)
        parent = layer.pop("inherit", None)
        layers.append((path, layer))
        path = experiment_path(str(parent), conf) if parent else None
    return layers[::-1]


def load_config(
    experiment: str = "quickstart", overrides: Sequence[str] = (), conf: str | Path | None = None
) -> DictConfig:
    """The resolved, validated config of an experiment variant."""
    cfg = OmegaConf.structured(ExperimentConfig)
    base_path = conf_dir(conf) / "base.yaml"
    cfg = _merge(cfg, _load_yaml(base_path), str(base_path))
    exp_path = experiment_path(experiment, conf)
    layers = _experiment_layers(exp_path, conf)
    for path, layer in layers:
        cfg = _merge(cfg, layer, str(path))
    if "name" not in layers[-1][1]:
        cfg.name = exp_path.stem
    bad = [o for o in overrides if "=" not in o]
    if bad:
        raise ConfigError(f"override {bad[0]!r} is not of the form key=value")
    try:
        dotlist = OmegaConf.from_dotlist(list(overrides))
    except OmegaConfBaseException as e:
        raise ConfigError(f"bad override: {e}") from None
    cfg = _merge(cfg, dotlist, "command-line override")
    try:
        OmegaConf.resolve(cfg)
    except OmegaConfBaseException as e:
        raise ConfigError(f"cannot resolve interpolation: {e}") from None
    OmegaConf.set_readonly(cfg, True)
    validate(cfg)
    return cfg


# ---- validation beyond types: choices and ranges ---------------------------------

def _choices() -> dict[str, Callable[[], Sequence[str]]]:
    # Imported lazily: registries live next to their implementations, and the
    # modules that hold them are light at import time (no torch/vllm).
    from searchlearn.learn import LEARNERS
    from searchlearn.models import SOURCES as MODEL_SOURCES
    from searchlearn.problems.sources import SOURCES as PROBLEM_SOURCES
    from searchlearn.reward import SCORERS
    from searchlearn.reward.base import AGGREGATIONS
    from searchlearn.reward.checks import STEP_CHECKS
    from searchlearn.reward.implicit import REWARDS as IMPLICIT_REWARDS
    from searchlearn.reward.labels import LABEL_SOURCES
    from searchlearn.search import ALGORITHMS, SELECTIONS

    return {
        "policy.source": lambda: sorted(MODEL_SOURCES),
        "problems.source": lambda: sorted(PROBLEM_SOURCES),
        "generation.backend": lambda: ["auto", "hf", "vllm"],
        "search.algorithm": lambda: sorted(ALGORITHMS),
        "search.selection": lambda: sorted(SELECTIONS),
        "learn.algorithm": lambda: sorted(LEARNERS),
        "learn.init_from": lambda: ["init", "previous"],
        "learn.data": lambda: ["all", "round"],
        "learn.dpo.pairs": lambda: ["both", "solution", "step"],
        "search.aggregation": lambda: sorted(AGGREGATIONS),
        "search.beam_search.aggregation": lambda: sorted(AGGREGATIONS),
        "search.beam_search.selection": lambda: sorted(SELECTIONS),
        "search.dvts.aggregation": lambda: sorted(AGGREGATIONS),
        "search.dvts.selection": lambda: sorted(SELECTIONS),
        "search.mcts.aggregation": lambda: sorted(AGGREGATIONS),
        "search.mcts.selection": lambda: sorted(SELECTIONS),
        "search.mcts.prior": lambda: ["policy", "uniform"],
        "search.mcts.evaluation": lambda: ["mixed", "prm", "rollout"],
        "prm.kind": lambda: sorted(SCORERS),
        "prm.labels": lambda: sorted(LABEL_SOURCES),
        "prm.init_from": lambda: ["policy", "previous"],
        "prm.label_mode": lambda: ["hard", "soft"],
        "prm.step_check": lambda: sorted(STEP_CHECKS),
        "prm.implicit.reward": lambda: list(IMPLICIT_REWARDS),
        "prm.implicit_step.reward": lambda: list(IMPLICIT_REWARDS),
        "execution.task_runner": lambda: ["dask", "ray", "threads"],
    }


def validate(cfg: DictConfig) -> None:
    for key, allowed in _choices().items():
        value = OmegaConf.select(cfg, key)
        options = allowed()
        if value not in options:
            raise ConfigError(f"{key}={value!r} is not one of: {', '.join(options)}")
    from searchlearn.config.ranges import range_errors

    for error in range_errors(flatten(cfg)):
        raise ConfigError(error)
    _check_search(cfg)
    _check_reward_models(cfg)
    if cfg.learn.algorithm == "grpo" and cfg.learn.grpo.prm_weight > 0 and not cfg.prm.enabled:
        raise ConfigError("learn.grpo.prm_weight > 0 shapes the reward with the PRM: set prm.enabled=true "
                          "(or learn.grpo.prm_weight=0)")
    _check_runner_installed(cfg.execution.task_runner)
    accelerate_config = cfg.execution.accelerate_config
    if accelerate_config and not Path(accelerate_config).is_file():
        raise ConfigError(f"execution.accelerate_config: file not found: {accelerate_config!r}")
    p = cfg.problems
    if p.source == "arithmetic" and not 1 <= p.min_steps <= p.max_steps <= 4:
        raise ConfigError("problems.min_steps/max_steps must satisfy 1 <= min_steps <= max_steps <= 4")
    if p.source == "gsm8k_jsonl":
        for key in ("train_path", "test_path"):
            path = p[key]
            if not path or not Path(path).is_file():
                raise ConfigError(f"problems.{key}: file not found: {path!r}")


def _check_reward_models(cfg: DictConfig) -> None:
    from searchlearn.reward import SCORERS

    unknown = [k for k in cfg.prm.compare_kinds if k not in SCORERS]
    if unknown:
        raise ConfigError(f"prm.compare_kinds: {unknown} not among: {', '.join(sorted(SCORERS))}")
    if cfg.prm.min_solve_rate > cfg.prm.max_solve_rate:
        raise ConfigError(f"prm.min_solve_rate={cfg.prm.min_solve_rate} is above "
                          f"prm.max_solve_rate={cfg.prm.max_solve_rate}: no problem would be labelled")


def _check_search(cfg: DictConfig) -> None:
    """The search algorithm (and every scaling method) as the algorithms themselves
    read their settings: valid, fitting the budget, and with a reward model if they need one."""
    from searchlearn.search import ALGORITHMS, SearchBudget
    from searchlearn.search.scaling import methods

    name, search = cfg.search.algorithm, OmegaConf.to_container(cfg.search, resolve=True)
    try:
        algorithm = ALGORITHMS[name].from_config(search)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"search.{name}: {e}") from None
    if not algorithm.fits(SearchBudget.from_config(search)):
        raise ConfigError(f"search.n={search['n']} is too small for {name} with these settings (search.{name})")
    if algorithm.needs_scorer and not cfg.prm.enabled:
        raise ConfigError(f"search.algorithm={name} / search.selection={cfg.search.selection} "
                          "needs a reward model: set prm.enabled=true")
    try:
        methods(list(cfg.eval.scaling.methods), search)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"eval.scaling.methods: {e}") from None


_RUNNER_PACKAGES = {"ray": ("prefect_ray", "prefect-ray"), "dask": ("prefect_dask", "prefect-dask")}


def _check_runner_installed(runner: str) -> None:
    """A missing scale-out package fails here, before any model loads."""
    if runner not in _RUNNER_PACKAGES:
        return
    import importlib.util

    module, package = _RUNNER_PACKAGES[runner]
    if importlib.util.find_spec(module) is None:
        raise ConfigError(f"execution.task_runner={runner} needs the {package} package: pip install {package} "
                          "(or pip install -e '.[scale]')")


def to_yaml(cfg: DictConfig) -> str:
    return OmegaConf.to_yaml(cfg, resolve=True)


def flatten(cfg: DictConfig) -> dict[str, object]:
    """Dotted-key params for MLflow (nested dicts would be stored as strings)."""
    out: dict[str, object] = {}

    def walk(node, prefix: str) -> None:
        for k, v in node.items():
            key = f"{prefix}{k}"
            if isinstance(v, dict):
                walk(v, key + ".")
            else:
                out[key] = v

    walk(OmegaConf.to_container(cfg, resolve=True), "")
    return out
