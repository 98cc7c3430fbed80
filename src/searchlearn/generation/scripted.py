"""A deterministic, scripted Generator for unit-testing search and labelling logic.

It is a real implementation of the Generator protocol (stop strings, n samples,
token counting, stats) whose "model" is a Python function, so tests can set the
exact success probability of every prefix and compute expected results by hand.
It never replaces an integration test with a real model.
"""

from __future__ import annotations

import random
import re
import time
from typing import Callable, Sequence

from searchlearn.generation.base import Completion, GenerationStats, SamplingParams

# respond(prompt, rng) -> the full continuation the "model" would write (before
# stop strings and the token limit are applied).
Respond = Callable[[str, random.Random], str]


_TOKEN = re.compile(r"[^\s]+|\n")


def count_tokens(text: str) -> int:
    """Whitespace-separated words, with each line break counted as a token of its own."""
    return len(_TOKEN.findall(text))


class ScriptedGenerator:
    def __init__(self, respond: Respond, seed: int = 0):
        self.respond = respond
        self.rng = random.Random(seed)
        self.stats = GenerationStats()
        self.prompts_seen: list[str] = []

    def generate(self, prompts: Sequence[str], params: SamplingParams) -> list[list[Completion]]:
        start = time.perf_counter()
        out = [[self._one(p, params) for _ in range(params.n)] for p in prompts]
        self.prompts_seen.extend(prompts)
        self.stats.add(len(prompts), out, time.perf_counter() - start)
        return out

    def _one(self, prompt: str, params: SamplingParams) -> Completion:
        text = self.respond(prompt, self.rng)
        finish = "stop"
        cut = min((text.find(s) + len(s) for s in params.stop if s in text), default=None)
        if cut is not None:
            text = text[:cut]
        if count_tokens(text) > params.max_new_tokens:
            text, finish = _truncate(text, params.max_new_tokens), "length"
        return Completion(text=text, num_tokens=count_tokens(text), finish_reason=finish)

    def reseed(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def close(self) -> None:
        pass


def _truncate(text: str, max_tokens: int) -> str:
    """The prefix of `text` holding its first `max_tokens` tokens."""
    matches = list(_TOKEN.finditer(text))
    return text[: matches[max_tokens - 1].end()] if max_tokens > 0 else ""
