"""A stage of the recipe as data: everything its output depends on, declared once.

A Stage names its core function (path in, path out) and that function's keyword
arguments. From this one declaration come:

- its key: the stage's name and round, its inputs (config slices and seeds as
  they are; an upstream artifact by its content hash, never by its path), the
  content of the data files it reads, and the hash of the code it runs (the
  stage function's searchlearn closure, see code_closure.py);
- its output directory, `<run_dir>/artifacts/<name>[-r<round>]/<key[:16]>`;
- Prefect's cache key (tasks/stage.py), the same key plus the run directory.

A stage is added by writing its core function and one function that declares it
from the config and its upstream references (see stages/*.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Mapping

from searchlearn.artifacts import sha256_file, stable_hash
from searchlearn.code_closure import SOURCE_ROOT, code_hash
from searchlearn.stages.common import refreshing


@dataclass(frozen=True)
class Upstream:
    """An upstream artifact as a stage input: the stage function receives `value`
    (a path inside the artifact, or the whole reference); the key sees only `sha`."""

    sha: str
    value: Any


def path_of(ref: dict, inside: str = "") -> Upstream:
    """An artifact reference ({"path", "sha", ...}) passed as its directory or a path inside it."""
    path = str(Path(ref["path"]) / inside) if inside else ref["path"]
    return Upstream(ref["sha"], path)


def ref_of(ref: dict | None) -> Upstream | None:
    """An artifact reference passed whole (None passes through: an optional input)."""
    return None if ref is None else Upstream(ref["sha"], ref)


def scorer_ref_of(ref: dict | None, step_check: str) -> Upstream | None:
    """A reward model's reference passed whole, with the step check it is used with
    (prm.step_check, reward/checks.py; stages.common.load_scorer_ref applies it): the
    key sees the model's content hash and the check."""
    if ref is None:
        return None
    sha = ref["sha"] if step_check == "none" else f"{ref['sha']}+{step_check}"
    return Upstream(sha, {**ref, "step_check": step_check})


@dataclass(frozen=True)
class Stage:
    task: str  # what the orchestrator calls it, a verb: "sft-on-demos"
    out: str  # its artifact family under artifacts/: "policy-init"
    fn: Callable[..., dict]  # core function: fn(**inputs, out_dir=...) -> artifact reference
    inputs: Mapping[str, Any] = field(default_factory=dict)  # fn's keyword arguments
    files: tuple[str, ...] = ()  # data files fn reads through its config: keyed by content
    round: int | None = None

    @property
    def directory(self) -> str:
        return self.out if self.round is None else f"{self.out}-r{self.round}"

    @cached_property
    def key(self) -> str:
        return stage_key(self)

    def out_dir(self, run_dir: str | Path) -> Path:
        return Path(run_dir).resolve() / "artifacts" / self.directory / self.key[:16]

    def run(self, run_dir: str | Path, refresh: bool = False) -> dict:
        """Produce the output (reused when complete, unless `refresh`: then rebuilt and
        swapped in, see artifacts.atomic_dir) and return its artifact reference."""
        with refreshing(refresh):
            return self.fn(**_values(self.inputs), out_dir=self.out_dir(run_dir))


def stage_key(stage: Stage, root: Path = SOURCE_ROOT) -> str:
    """The key of `stage`, with its code read from the source tree at `root`."""
    return stable_hash({
        "stage": stage.directory,
        "fn": f"{stage.fn.__module__}.{stage.fn.__qualname__}",
        "inputs": _keyed(stage.inputs),
        "files": {path: sha256_file(path) for path in stage.files},
        "code": code_hash(stage.fn.__module__, stage.fn.__name__, root),
    })


def _keyed(value: Any) -> Any:
    if isinstance(value, Upstream):
        return {"sha": value.sha}
    if isinstance(value, Mapping):
        return {k: _keyed(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_keyed(v) for v in value]
    return value


def _values(value: Any) -> Any:
    if isinstance(value, Upstream):
        return value.value
    if isinstance(value, Mapping):
        return {k: _values(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_values(v) for v in value]
    return value
