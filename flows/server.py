"""A temporary Prefect API server that dies with the process that started it.

Without PREFECT_API_URL, Prefect 3.7 starts a temporary server itself: a
`python -m uvicorn ... prefect.server.api.server:create_app` child
(SubprocessASGIServer), stopped by an atexit hook. A SIGKILLed parent runs no
atexit hook, so the server (~300 MB) lived on, reparented to PID 1.

`searchlearn run` starts the same server itself, before Prefect is imported, and
points PREFECT_API_URL at it. The child asks the kernel for SIGTERM when its parent
dies (Linux prctl PR_SET_PDEATHSIG), then execs uvicorn; the setting survives
exec. The signal follows the *thread* that forked the child, so this must run on
the main thread, which lives as long as the process. Elsewhere than Linux the
server is still stopped at a normal exit, but not after a SIGKILL.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

# Runs in the child before uvicorn: ask for SIGTERM (15) when the parent dies
# (PR_SET_PDEATHSIG = 1), give up if it already has, then become uvicorn.
_TIED_EXEC = (
    "import ctypes, os, sys\n"
    "if sys.platform.startswith('linux'):\n"
    "    ctypes.CDLL(None, use_errno=True).prctl(1, 15, 0, 0, 0)\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    sys.exit(0)\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)
PORT_IN_USE = 3  # uvicorn's exit code when it cannot bind


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _command(port: int) -> list[str]:
    prefect_dir = Path(next(iter(importlib.util.find_spec("prefect").submodule_search_locations)))
    return [sys.executable, "-c", _TIED_EXEC, str(os.getpid()), sys.executable, "-m", "uvicorn",
            "--app-dir", str(prefect_dir.parent), "--factory", "prefect.server.api.server:create_app",
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "error", "--lifespan", "on"]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def start(timeout_s: float = 120.0) -> tuple[subprocess.Popen, str]:
    """Start the server (as Prefect's own temporary one: no UI, ephemeral services);
    return the process and its API URL once it answers."""
    env = {**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}
    deadline = time.monotonic() + timeout_s
    while True:
        port = _free_port()
        proc = subprocess.Popen(_command(port), env=env)
        url = f"http://127.0.0.1:{port}/api"
        while time.monotonic() < deadline and proc.poll() is None and not _healthy(url):
            time.sleep(0.2)
        if proc.poll() is None and _healthy(url):
            return proc, url
        stop(proc)
        if proc.returncode != PORT_IN_USE or time.monotonic() >= deadline:
            raise RuntimeError(f"the temporary Prefect server did not start (exit code {proc.returncode})")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def prefect_api() -> str:
    """PREFECT_API_URL: the configured server, else a temporary one tied to this process.
    Call before Prefect is imported (its settings read the environment). The server is
    stopped at exit, after Prefect's own exit hooks, registered later, have flushed
    their logs and events to it (atexit runs hooks last-registered first)."""
    if not os.environ.get("PREFECT_API_URL"):
        proc, os.environ["PREFECT_API_URL"] = start()
        atexit.register(stop, proc)
    return os.environ["PREFECT_API_URL"]
