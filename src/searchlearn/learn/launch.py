"""Run a training job in this process, or in N processes under `accelerate launch`.

A training stage (SFT on demos, the round's learner, the reward model) hands
`run_training` a *job*: a module-level function that takes a JSON-able spec and
returns small metrics. By default the job runs right here, in the flow's process.

With `execution.train_processes` > 1 (or an `execution.accelerate_config` file)
the job runs in fresh processes started by `accelerate launch` (torchrun
underneath): data-parallel training with NCCL on GPUs, one process per GPU, or
gloo on a CPU-only machine. Every process runs the same job; the Trainer gives
each a different slice of every batch and averages the gradients, and only the
main process writes the checkpoint (see learn/distributed.py) and the metrics.

`train.batch_size` is per process, as in accelerate and TRL, so N processes take
N-times-larger optimizer steps. The launch settings are therefore part of every
training stage's cache key (`launch_settings`).

The children inherit this process's stdout and stderr, so their progress bars and
logs show live. A failed launch raises with the failing rank's traceback; it never
leaves a checkpoint behind, because the stage's output directory is renamed into
place only after the job returned.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Callable

from searchlearn.artifacts import atomic_write_json, atomic_write_text, sha256_file
from searchlearn.learn.distributed import is_main_process, process_rank, world_size

RESULT_FILE = "result.json"
ERROR_FILE = "error-rank{rank}.txt"
# Only the project's own training jobs may be named on the child's command line.
JOB_PREFIX = "searchlearn."

Job = Callable[[dict], dict]


class LaunchError(RuntimeError):
    pass


def launch_settings(execution: dict) -> dict | None:
    """The `execution` keys that change what training produces, for training stages'
    cache keys and for `run_training`: None when training runs in the flow's process.

    The accelerate config enters by content, so editing the file retrains."""
    processes, config = execution["train_processes"], execution["accelerate_config"]
    if processes <= 1 and not config:
        return None
    settings = {"processes": processes, "config": config}
    if config:
        settings["config_sha"] = sha256_file(config)
    return settings


def run_training(job: Job, spec: dict, launch: dict | None) -> dict:
    """`job(spec)`, here (launch None) or under accelerate launch; returns its metrics."""
    release_engine(launch)
    if launch is None:
        return job(spec)
    target = job_name(job)
    check_devices(launch["processes"])
    with tempfile.TemporaryDirectory(prefix="searchlearn-launch-") as work:
        spec_path, result_path = Path(work) / "spec.json", Path(work) / RESULT_FILE
        atomic_write_json(spec_path, spec)
        cmd = accelerate_command(target, spec_path, result_path, launch, cuda=_cuda_count() > 0,
                                 cpus=os.cpu_count() or 1, port=free_port())
        code = _wait(subprocess.Popen(cmd, start_new_session=True))
        if code != 0 or not result_path.is_file():
            raise LaunchError(_failure_message(target, launch, code, Path(work)))
        return json.loads(result_path.read_text())["metrics"]


def release_engine(launch: dict | None) -> None:
    """Close this process's generation engine before training on a GPU or in other
    processes: its weights and KV cache would sit beside the trainer, or beside the
    training processes on the same GPUs, and the next stage samples from a new
    checkpoint anyway.

    Training in this process on a CPU keeps it: RAM has room for both (a SmolLM2
    engine is ~0.3 GB of weights plus its KV reservation, generation.kv_cache_gib),
    and the next stage then swaps the new weights into it in ~0.4 s instead of
    starting an engine for ~25 s (generation.get_generator)."""
    import torch

    from searchlearn.generation import release_generator

    if launch is not None or torch.cuda.is_available():
        release_generator()


def job_name(job: Job) -> str:
    """`module:function` of a training job, which the child process imports."""
    name = f"{job.__module__}:{job.__qualname__}"
    if not name.startswith(JOB_PREFIX) or "<" in name:
        raise ValueError(f"training job {name} must be a module-level function of the searchlearn package")
    return name


def accelerate_command(target: str, spec_path: str | Path, result_path: str | Path, launch: dict, cuda: bool,
                       cpus: int, port: int) -> list[str]:
    """The `accelerate launch` command line that runs `target` on `launch["processes"]` processes."""
    n = launch["processes"]
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(n),
           "--main_process_port", str(port)]
    if launch["config"]:
        # The file decides the distributed type (DDP, FSDP, DeepSpeed) and machines.
        cmd += ["--config_file", launch["config"]]
    else:
        # Spelled out so accelerate neither warns about defaults nor reads a stray
        # ~/.cache/huggingface/accelerate/default_config.yaml. --multi_gpu means
        # torchrun with N processes; on a CPU-only machine the Trainer (use_cpu)
        # then joins them with gloo instead of NCCL.
        cmd += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
        cmd += ["--multi_gpu"] if n > 1 else []
    if not cuda:
        # torchrun pins every process to 1 thread; share the cores out instead.
        cmd += ["--num_cpu_threads_per_process", str(max(1, cpus // n))]
    return cmd + ["-m", __name__, target, str(spec_path), str(result_path)]


def check_devices(processes: int) -> None:
    """Fail before launching when there are fewer GPUs than processes (each process
    takes the GPU of its local rank; a missing one fails only after loading)."""
    count = _cuda_count()
    if count and processes > count:
        raise LaunchError(f"execution.train_processes={processes} but this machine has {count} CUDA device(s)")


def free_port() -> int:
    """A free loopback port for the rendezvous, so concurrent launches do not collide."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _wait(proc: subprocess.Popen) -> int:
    """The launcher's exit code. If this process is interrupted (Ctrl-C, a Prefect
    cancellation), the whole launch's process group goes down with it."""
    try:
        return proc.wait()
    except BaseException:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        raise


def _failure_message(target: str, launch: dict, code: int, work: Path) -> str:
    errors = sorted(work.glob(ERROR_FILE.format(rank="*")))
    detail = errors[0].read_text().strip() if errors else "(no traceback recorded; see the output above)"
    where = f"{errors[0].stem.split('-')[-1]}: " if errors else ""
    return (f"training job {target} failed under accelerate launch with {launch['processes']} process(es) "
            f"(exit code {code}); {where}{detail}")


# --- the child side: `python -m searchlearn.learn.launch TARGET SPEC RESULT` -----------------


def resolve_job(target: str) -> Job:
    module, _, name = target.partition(":")
    if not target.startswith(JOB_PREFIX) or not name:
        raise ValueError(f"not a searchlearn training job: {target!r}")
    return getattr(importlib.import_module(module), name)


def _join_process_group() -> None:
    """Form the process group before the job loads anything, and prove it formed:
    without it every process would silently train alone on all the data."""
    if world_size() <= 1:
        return
    import torch
    from accelerate import PartialState

    # cpu=True is what the Trainer passes on a machine without CUDA (use_cpu); the
    # state is shared, so the Trainer later reuses this group.
    state = PartialState(cpu=not torch.cuda.is_available())
    if state.num_processes != world_size():
        raise LaunchError(f"process group has {state.num_processes} process(es), expected WORLD_SIZE="
                          f"{world_size()} ({state.distributed_type})")


def _leave_process_group() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def main(argv: list[str] | None = None) -> int:
    target, spec_path, result_path = argv if argv is not None else sys.argv[1:]
    try:
        _join_process_group()
        metrics = resolve_job(target)(json.loads(Path(spec_path).read_text()))
        if is_main_process():
            atomic_write_json(result_path, {"metrics": metrics})
        _leave_process_group()
    except BaseException:
        error_path = Path(result_path).with_name(ERROR_FILE.format(rank=process_rank()))
        atomic_write_text(error_path, traceback.format_exc())
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
