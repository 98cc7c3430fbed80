"""Crash-safe artifact writing and content hashing.

Every artifact (JSONL data, checkpoints, metrics) is written to a temporary path
next to its destination and renamed into place, so a process killed mid-write
never leaves a file or directory that a re-run would trust. Directories get a
`_COMPLETE` marker, written last, for the same reason.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

COMPLETE_MARKER = "_COMPLETE"


def atomic_write_text(path: str | Path, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_jsonl(path: str | Path, rows) -> Path:
    return atomic_write_text(path, "".join(json.dumps(r, sort_keys=True, default=str) + "\n" for r in rows))


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temp directory; on success it is marked complete and renamed to `path`.

    An existing `path` (complete, when refreshing; or left incomplete by a crash) is
    first renamed aside, then deleted: a reader sees the old directory or the new
    one, never a mix. On error the temp directory is removed and `path` is left
    untouched. Temp names start with "." and end in ".tmp" (see is_temp_name), so a
    killed run's leftovers can be found and removed at the next start.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        (tmp / COMPLETE_MARKER).write_text("ok\n")
        old = None
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", suffix=".tmp", dir=path.parent))
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def is_temp_name(name: str) -> bool:
    """A name atomic_write_text / atomic_dir use for work in progress."""
    return name.startswith(".") and name.endswith(".tmp")


def is_complete_dir(path: str | Path) -> bool:
    return (Path(path) / COMPLETE_MARKER).is_file()


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_path(path: str | Path) -> str:
    """Content hash of a file, or of a directory's files (names and contents)."""
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(path)).encode())
        h.update(sha256_file(f).encode())
    return h.hexdigest()


def stable_hash(obj: Any) -> str:
    """Hash of a JSON-able object, independent of dict order."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def artifact_ref(path: str | Path, **meta: Any) -> dict:
    """What stages pass around: a path, its content hash (so downstream cache keys
    change exactly when content does) and small metadata such as metrics."""
    path = Path(path).resolve()
    return {"path": str(path), "sha": sha256_path(path), **meta}
