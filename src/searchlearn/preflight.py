"""Checks that need no model, run before any work starts.

`searchlearn run` calls preflight() before Prefect is imported, and every flow
calls it again first thing (deployments do not go through the CLI). Each failure
is one ConfigError line naming the key, file or line; load_config has already
checked types, choices and numeric ranges. Nothing here creates anything: the run
directory is made when the run claims it (rundir.claim).
"""

from __future__ import annotations

import os
import socket
import sqlite3
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from searchlearn.config import ConfigError

# Connecting to a tracking server or opening its database must fail fast: MLflow's
# own retries took minutes (255 s for an unreachable server).
TIMEOUT_S = 1.0


def preflight(cfg) -> None:
    check_problems(cfg)
    check_policy_source(cfg)
    check_run_dir(cfg.run_dir)
    check_tracking(cfg)


def check_problems(cfg) -> None:
    """Data files parsed in full (bounded line length), with enough rows for the demos,
    the search pool and the held-out problems asked for; every extra eval set."""
    from searchlearn.problems.sources import eval_set

    for i, entry in enumerate(cfg.eval.extra_sets):
        if not problem_file(f"eval.extra_sets[{i}]", eval_set(entry)[1]):
            raise ConfigError(f"eval.extra_sets[{i}]: {entry} holds no problems")
    p = cfg.problems
    if p.source == "gsm8k_hub":
        return  # needs the hub: checked when the stage loads it
    need_train = {"init.num_demos": cfg.init.num_demos}
    if cfg.rounds > 0:
        need_train["search.problems_per_round"] = cfg.search.problems_per_round
    need_test = {"eval.num_problems": max(cfg.eval.num_problems, 1)}
    if cfg.prm.enabled and cfg.prm.rerank_problems:
        need_test["prm.rerank_problems"] = cfg.prm.rerank_problems
    if cfg.eval.scaling.enabled and cfg.eval.scaling.num_problems:
        need_test["eval.scaling.num_problems"] = cfg.eval.scaling.num_problems
    if p.source == "gsm8k_jsonl":
        train = problem_file("problems.train_path", p.train_path, p.train_size)
        test = problem_file("problems.test_path", p.test_path, p.test_size)
        _enough("problems.train_path", f"{p.train_path} has {len(train)} problems", len(train), need_train, True)
        _enough("problems.test_path", f"{p.test_path} has {len(test)} problems", len(test), need_test, False)
        from searchlearn.problems.base import split_ids_disjoint

        if not split_ids_disjoint(train, test):
            raise ConfigError(f"problems: {p.train_path} and {p.test_path} share questions")
    else:
        _enough("problems.train_size", f"problems.train_size={p.train_size}", p.train_size, need_train, True)
        _enough("problems.test_size", f"problems.test_size={p.test_size}", p.test_size, need_test, False)


def problem_file(key: str, path: str, limit: int = 0) -> list:
    """A GSM8K-format JSONL file, every row checked, as the stage would read it."""
    from searchlearn.problems.base import DatasetFormatError
    from searchlearn.problems.gsm8k import load_jsonl

    if not path or not Path(path).is_file():
        raise ConfigError(f"{key}: file not found: {path!r}")
    try:
        return load_jsonl(path, limit=limit)
    except (DatasetFormatError, OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{key}: {e}") from None


def _enough(key: str, have: str, count: int, need: dict[str, int], disjoint: bool) -> None:
    """`need`: what each setting takes from the split: disjoint parts (demos, then the
    search pool) add up; held-out evaluations all read the split's first problems."""
    total = sum(need.values()) if disjoint else max(need.values())
    if count < total:
        asked = (" + " if disjoint else ", ").join(f"{k}={v}" for k, v in need.items())
        raise ConfigError(f"{key}: {have}; {asked} need {total}")


def check_policy_source(cfg) -> None:
    """The base model can be found (a package, a local directory), without loading it."""
    from searchlearn.models.init import check_source

    try:
        check_source(dict(cfg.policy))
    except (FileNotFoundError, ImportError, ValueError) as e:
        raise ConfigError(f"policy: {e}") from None


def check_run_dir(run_dir: str) -> None:
    """An existing run_dir must be a writable directory; a new one must be creatable."""
    path = Path(run_dir).resolve()
    if path.exists():
        if not path.is_dir():
            raise ConfigError(f"run_dir: {path} exists and is not a directory")
        _probe_write("run_dir", path)
        return
    parent = next(p for p in path.parents if p.exists())
    if not parent.is_dir():
        raise ConfigError(f"run_dir: {path} cannot be created: {parent} is not a directory")
    _probe_write("run_dir", parent, f"{path} cannot be created: ")


def _probe_write(key: str, directory: Path, what: str = "") -> None:
    """Create and remove a directory in `directory`: access() would not tell (root
    passes it, /proc and /sys refuse anyway)."""
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".preflight-", dir=directory))
    except OSError as e:
        raise ConfigError(f"{key}: {what}{directory} is not writable ({e.strerror})") from None


def check_tracking(cfg) -> None:
    """`tracking.uri` reachable and writable, each probe within TIMEOUT_S."""
    from searchlearn.tracking import tracking_uri

    uri = tracking_uri(cfg)
    scheme = urlparse(uri).scheme
    if scheme == "sqlite":
        _check_sqlite(uri, default=not cfg.tracking.uri)
    elif scheme in ("http", "https"):
        _check_server(uri)
    elif scheme in ("", "file"):
        raise ConfigError(f"tracking.uri: {uri!r} is a file store, which MLflow 3.13+ cannot write; "
                          "use sqlite:////absolute/path/mlflow.db")
    elif urlparse(uri).hostname:  # postgresql://, mysql://, ...: at least the host must answer
        _check_port(uri)


def _check_sqlite(uri: str, default: bool) -> None:
    path = uri[len("sqlite:///"):]
    if not path.startswith("/"):
        raise ConfigError(f"tracking.uri: {uri!r} is relative to wherever the run starts; "
                          "use an absolute path: sqlite:////absolute/path/mlflow.db")
    db = Path(path)
    if default:
        return  # <run_dir>/mlflow.db: check_run_dir covers it, and the run creates run_dir
    if not db.parent.is_dir():
        # MLflow would create the missing directories (as whoever runs it, wherever that is).
        raise ConfigError(f"tracking.uri: directory {db.parent} does not exist; create it or fix the URI")
    if not db.exists():
        _probe_write("tracking.uri", db.parent)
        return
    try:  # a write lock proves the file is a writable database, and not locked by another writer
        conn = sqlite3.connect(f"file:{db}?mode=rw", uri=True, timeout=TIMEOUT_S)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.rollback()
        finally:
            conn.close()
    except sqlite3.Error as e:
        raise ConfigError(f"tracking.uri: {db} is not a writable SQLite database ({e})") from None


def _check_server(uri: str) -> None:
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=TIMEOUT_S) as response:
            response.read(64)
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise ConfigError(f"tracking.uri: MLflow server {uri} is not reachable "
                          f"({getattr(e, 'reason', e)})") from None


def _check_port(uri: str) -> None:
    url = urlparse(uri)
    try:
        socket.create_connection((url.hostname, url.port or _DEFAULT_PORTS.get(url.scheme.split("+")[0], 0)),
                                 timeout=TIMEOUT_S).close()
    except OSError as e:
        raise ConfigError(f"tracking.uri: {url.hostname}:{url.port} does not answer ({e})") from None


_DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mssql": 1433}
