"""The process's allocator around training and scoring (glibc malloc settings).

Training and scoring keep freed memory in the process for speed (`keep_heap`); each
stage hands it back when it ends (`release_heap`, called by stages.common.produce).
A module of its own, so that every stage's code hash does not include the trainers.
"""

from __future__ import annotations

import functools

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # glibc mallopt parameters
# glibc's defaults, restored by release_heap (mallopt.3).
DEFAULT_TRIM_THRESHOLD, DEFAULT_MMAP_MAX = 128 * 1024, 65536


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
