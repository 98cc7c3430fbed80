"""The Generator protocol: every sampling call in search, labelling and evaluation
goes through it, so backends (vLLM, HF generate, scripted test doubles) swap freely."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence


@dataclass(frozen=True)
class SamplingParams:
    n: int = 1
    temperature: float = 0.8
    top_p: float = 1.0
    max_new_tokens: int = 256
    # Generation stops after any of these strings (included in the text).
    # Tree search uses ("\n",) to generate one step at a time.
    stop: tuple[str, ...] = ()

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0


@dataclass
class Completion:
    text: str
    num_tokens: int  # generated tokens, counted by the backend's tokenizer
    finish_reason: str = "stop"  # "stop" (EOS or stop string) or "length"


@dataclass
class GenerationStats:
    """Running totals a generator keeps so callers can report compute spent."""

    calls: int = 0
    prompts: int = 0
    completions: int = 0
    tokens: int = 0
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    def add(self, prompts: int, completions: list[list[Completion]], seconds: float) -> None:
        self.calls += 1
        self.prompts += prompts
        self.completions += sum(len(c) for c in completions)
        self.tokens += sum(c.num_tokens for cs in completions for c in cs)
        self.seconds += seconds


class Generator(Protocol):
    """Samples continuations of raw text prompts.

    `generate` returns, for each prompt, `params.n` completions. Prompts are raw
    strings (the caller already applied `formatting.build_prompt` and any partial
    solution), so prefix-sharing calls from tree search hit the prefix cache.
    """

    stats: GenerationStats

    def generate(self, prompts: Sequence[str], params: SamplingParams) -> list[list[Completion]]: ...

    def reseed(self, seed: int) -> None:
        """Restart the sampling stream. One engine serves consecutive stages, and a
        cached stage skips its generate calls, so each stage reseeds first: its
        samples then depend on its own seed, not on what ran before it."""
        ...

    def close(self) -> None: ...
