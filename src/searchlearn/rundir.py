"""The run directory: one run at a time, and nothing left over from a killed one.

`claim(run_dir)` holds an exclusive lock on `<run_dir>/.lock` for the whole run.
A second run on the same run_dir fails at once with RunDirBusy, naming the
holder (pid, host, start time, command), instead of waiting: two runs on one
run_dir compute every stage twice and replace each other's outputs, so a second
run is a mistake to report, not a job to queue (a work pool's concurrency limit
is the place to queue runs).

The lock is a kernel `flock`, so the kernel drops it when its process dies, even
by SIGKILL: there is never a stale lock to break. Caveats: a child forked (not
exec'd) by the holder keeps the lock while it lives (the message then says the
holder pid is gone); and flock is not reliable on every network filesystem.

Holding the lock, claim() removes what a killed run left: `.<name>.*.tmp` work
in progress beside artifacts, and `<run_dir>/tmp`, where this process's temporary
files go during the run (trainers' work dirs, `sft-work-*` and the like, land
there instead of the system temp dir, so they can be told apart from another
run's). It empties `<run_dir>/tmp` again when the run ends, however it ends.
Unix sockets stay in the system temp dir (a socket path must fit in 108 bytes):
TMPDIR is not changed, so child processes (Ray, which puts its sockets there,
accelerate launch) keep it, and vLLM's VLLM_RPC_BASE_PATH is pinned to it.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from searchlearn.artifacts import is_temp_name

LOCK_FILE = ".lock"
TMP_DIR = "tmp"

_held: dict[Path, list] = {}  # lock path -> [fd, depth]: re-entrant within this process
_guard = threading.Lock()


class RunDirBusy(RuntimeError):
    """Another process is running in this run_dir."""


@contextmanager
def locked(run_dir: str | Path) -> Iterator[Path]:
    """Hold `run_dir`'s lock (re-entrant: the CLI takes it before Prefect starts, and
    the flow it then runs takes it again)."""
    path = Path(run_dir).resolve() / LOCK_FILE
    with _guard:
        if path in _held:
            _held[path][1] += 1
        else:
            _held[path] = [_acquire(path), 1]
    try:
        yield path.parent
    finally:
        with _guard:
            _held[path][1] -= 1
            if _held[path][1] == 0:
                os.close(_held.pop(path)[0])  # closing the descriptor releases the lock


def _acquire(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 4096).decode(errors="replace")
        os.close(fd)
        raise RunDirBusy(busy_message(path.parent, holder)) from None
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps(holder_info()).encode())
    return fd


def holder_info() -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S %z"), "command": " ".join(sys.argv)}


def busy_message(run_dir: Path, raw: str) -> str:
    try:
        h = json.loads(raw)
    except ValueError:  # the holder is between taking the lock and writing its name
        return f"run_dir {run_dir} is in use by another run (starting up); wait for it or use another run_dir"
    gone = ""
    if h.get("host") == socket.gethostname() and not _alive(h.get("pid")):
        gone = f" (pid {h.get('pid')} is gone: a process it forked still holds {run_dir / LOCK_FILE})"
    return (f"run_dir {run_dir} is in use by pid {h.get('pid')} on {h.get('host')} since {h.get('started')} "
            f"({h.get('command')}){gone}; wait for it to finish or use another run_dir")


def _alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, TypeError, ValueError):
        return False
    except PermissionError:
        return True
    return True


def clean_leftovers(run_dir: str | Path) -> list[Path]:
    """Remove a killed run's temp work: `<run_dir>/tmp/*` and temp names directly in
    each `artifacts/<stage>/`. Only safe holding the lock. Returns what it removed."""
    run_dir = Path(run_dir)
    leftovers = list((run_dir / TMP_DIR).glob("*")) if (run_dir / TMP_DIR).is_dir() else []
    artifacts = run_dir / "artifacts"
    if artifacts.is_dir():
        leftovers += [p for stage in artifacts.iterdir() if stage.is_dir()
                      for p in stage.iterdir() if is_temp_name(p.name)]
    for p in leftovers:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    return leftovers


# Libraries that put Unix sockets under the temp dir, and where to keep them: a
# socket path must fit in 108 bytes, which a run_dir deep in a tree can exceed.
_SOCKET_DIRS = ("VLLM_RPC_BASE_PATH",)


@contextmanager
def temp_root(path: Path) -> Iterator[Path]:
    """This process's temporary files go under `path` for the block (sockets excepted)."""
    path.mkdir(parents=True, exist_ok=True)
    before, system = tempfile.tempdir, tempfile.gettempdir()
    pinned = [name for name in _SOCKET_DIRS if name not in os.environ]
    os.environ.update({name: system for name in pinned})
    tempfile.tempdir = str(path)
    try:
        yield path
    finally:
        tempfile.tempdir = before
        for name in pinned:
            os.environ.pop(name, None)


@contextmanager
def claim(run_dir: str | Path) -> Iterator[str]:
    """Lock `run_dir`, clear a killed run's leftovers, keep temp files under it for
    the block and clear them after it; yields its absolute path."""
    with locked(run_dir) as root:
        clean_leftovers(root)
        try:
            with temp_root(root / TMP_DIR):
                yield str(root)
        finally:
            clean_leftovers(root)
