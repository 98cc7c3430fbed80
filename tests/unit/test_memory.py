"""The allocator settings around training and scoring (searchlearn.memory), in a
child process: they are process-wide."""

from __future__ import annotations

import math
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


ONEDNN_PROBE = "import os, searchlearn; print(os.environ.get('ONEDNN_PRIMITIVE_CACHE_CAPACITY'))"


@pytest.mark.parametrize("given, expected", [(None, "64"), ("7", "7")])
def test_importing_the_package_caps_onednn_primitive_cache_unless_the_user_set_it(given, expected):
    """oneDNN reads its cache capacity once, at its first primitive: the package sets it
    at import, before any model runs, and never overrides the user's value."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "ONEDNN_PRIMITIVE_CACHE_CAPACITY"}
    if given is not None:
        env["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] = given
    out = subprocess.run([sys.executable, "-c", ONEDNN_PROBE], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == expected


def test_length_batches_puts_every_index_once_longest_batch_first():
    from searchlearn.reward.prm import length_batches

    lengths = [5, 9, 1, 7, 7, 3, 12]
    batches = length_batches(lengths, 3)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert [len(b) for b in batches] == [3, 3, 1]
    widths = [max(lengths[i] for i in b) for b in batches]
    assert widths == sorted(widths, reverse=True) and widths[0] == 12
    assert length_batches([], 4) == []


class WidthSpy:
    """A stand-in model for the scorers' batching: records each batch's padded width
    and returns zeros of the shapes the scorers read."""

    def __init__(self, scale: float = 0.0):
        import torch

        self.widths, self.weight, self.scale = [], torch.nn.Parameter(torch.zeros(1)), scale

    def parameters(self):
        return iter([self.weight])

    def __call__(self, input_ids, attention_mask, labels=None, fused_lm_head=False):
        import torch
        from types import SimpleNamespace

        b, t = input_ids.shape
        self.widths.append(t)
        # Each row's own length in every output, so a candidate scored under another's
        # index would show.
        n = attention_mask.sum(-1, keepdim=True).float() * self.scale
        if fused_lm_head:
            return SimpleNamespace(log_probs=n.expand(b, t - 1))
        return SimpleNamespace(logits=n.expand(b, t).unsqueeze(-1))


def test_scorers_feed_the_longest_batch_first():
    """Why it matters: under keep_heap, shortest-first batches each needed a little more
    than any block freed before, and an implicit-PRM rerank of 3,200 candidates grew to
    24 GiB (README, "Reward models at quickstart scale"). Both scorers go through
    length_batches, and every candidate still gets its own scores."""
    from searchlearn.reward.implicit import implicit_scores
    from searchlearn.reward.prm import score_encoded

    lengths = [12, 40, 7, 33, 25, 18, 40, 9, 30]
    encoded = [(list(range(1, n + 1)), [n - 1], 2) for n in lengths]
    prm = WidthSpy(scale=0.1)
    scores = score_encoded(prm, [(ids, pos) for ids, pos, _ in encoded], 0, 4)
    assert prm.widths == [40, 25, 7]
    assert scores == [[pytest.approx(1 / (1 + math.exp(-n / 10)))] for n in lengths]  # in input order
    policy, ref = WidthSpy(scale=0.001), WidthSpy()
    values = implicit_scores(policy, ref, encoded, 0, 4, beta=1.0)
    assert policy.widths == ref.widths == [40, 25, 7]
    # q at the step's end token n - 1: the per-token ratio n / 1000 summed over n - 1 tokens
    assert values == [[pytest.approx(1 / (1 + math.exp(-(n - 1) * n / 1000)))] for n in lengths]
