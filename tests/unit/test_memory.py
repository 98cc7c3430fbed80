"""The allocator settings around training and scoring (searchlearn.memory), in a
child process: they are process-wide."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import pytest


HEAP_PROBE = """
from searchlearn.memory import keep_heap, release_heap

def rss_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

base = rss_mib()
keep_heap()
blocks = [bytearray(b"\\x01") * (64 << 20) for _ in range(8)]  # 512 MiB, every page touched
del blocks
kept = rss_mib()
release_heap()
print(base, kept, rss_mib())
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists() or platform.libc_ver()[0] != "glibc",
                    reason="glibc's mallopt and /proc only")
def test_keep_heap_holds_freed_memory_until_release_heap_hands_it_back():
    """Training keeps its heap (fast steps); a finished stage must give it back, or a
    flow's process grows to every stage's high-water mark. In a child process: the
    allocator settings are process-wide."""
    out = subprocess.run([sys.executable, "-c", HEAP_PROBE], capture_output=True, text=True, check=True)
    base, kept, released = map(float, out.stdout.split())
    assert kept - base > 400  # 512 MiB freed but kept
    assert released - base < 100  # handed back
