"""The process's allocator around training and scoring (glibc malloc settings).

Training and scoring keep freed memory in the process for speed (`keep_heap`); each
stage hands it back when it ends (`release_heap`, called by stages.common.produce).
A module of its own, so that every stage's code hash does not include the trainers.
"""

from __future__ import annotations

import functools
import os

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # glibc mallopt parameters
# glibc's defaults, restored by release_heap (mallopt.3).
DEFAULT_TRIM_THRESHOLD, DEFAULT_MMAP_MAX = 128 * 1024, 65536


# oneDNN keeps a compiled primitive per (op, shape) and its buffers with it; at its
# default capacity of 1,024 a training with a few dozen batch lengths kept adding them
# all through a second epoch (bench/train_memory.py --onednn-cache).
ONEDNN_CACHE_CAPACITY = "64"


def limit_onednn_cache() -> None:
    """Cap oneDNN's primitive cache (ONEDNN_PRIMITIVE_CACHE_CAPACITY) unless the user set
    it. oneDNN reads the variable once, when its first primitive is made, so this runs
    when the package is imported, before any model runs; child processes inherit it.

    Measured (bench/train_memory.py --onednn-cache 1024 64 0: implicit_step, 600 rows,
    2 epochs, batches padded to 16): capacity 1,024 peaked at 14.9 GiB, still growing
    (12.9 GiB at the first half's peak); 64 at 11.7 GiB (11.1) at the same speed, 587 vs
    581 tok/s; 0 at 10.7 GiB but 13 % slower. vLLM's sampling ran at the same speed at
    1,024 and 64 (bench/generation.py: 946 vs 957 tok/s)."""
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", ONEDNN_CACHE_CAPACITY)


def keep_heap() -> None:
    """Serve every allocation from the heap and never hand it back (glibc mallopt),
    until `release_heap`.

    By default glibc mmaps each block over 32 MB and unmaps it on free, so a training
    step's activations are fresh pages every step, and a page fault is slow on a VM:
    measured here, touching 1 GiB of new memory took 0.23-1.1 s against 0.13 s to
    rewrite it, and a SmolLM2 forward on a new sequence length took 2-14 s instead of
    1.2 s. With mmap off and trimming off, steps reuse the same memory (1.1-1.6 s
    for every length). The cost: the process keeps its peak heap, fragmented, until
    `release_heap` (every stage calls it when it ends: stages.common.produce).
    """
    libc = _libc()
    if libc is not None:
        libc.mallopt(M_MMAP_MAX, 0)
        libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1)


def release_heap() -> None:
    """Hand the freed heap back to the OS and restore glibc's defaults.

    Without it a flow's process kept every stage's high-water mark: three reward-model
    trainings in one process reached 24 GiB here, and a rerank with three models was
    OOM-killed. malloc_trim(0) returns every free page, not only the heap's top
    (glibc >= 2.8 madvises free chunks inside the heap too). Safe while other threads
    allocate; a stage running beside this one only loses keep_heap's speed until its
    next fit or scorer sets it again."""
    import gc

    gc.collect()  # trainers and models sit in reference cycles
    libc = _libc()
    if libc is not None:
        libc.mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX)
        libc.mallopt(M_TRIM_THRESHOLD, DEFAULT_TRIM_THRESHOLD)
        libc.malloc_trim(0)


@functools.cache
def _libc():
    """glibc, or None elsewhere (musl, macOS): then both calls above do nothing."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
