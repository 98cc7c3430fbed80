"""Generator backend on transformers `generate`: the fallback when vLLM is missing,
and the reference the vLLM backend is checked against.

Conventions shared with the vLLM backend (so search code never cares which one runs):
- a completion's text INCLUDES the stop string that ended it (vLLM's
  `include_stop_str_in_output=True`) and nothing after it; EOS is not in the text;
- `num_tokens` counts generated tokens up to and including the one that finished the
  sequence (EOS or the token completing a stop string), never padding;
- finish_reason is "stop" (EOS or stop string) or "length" (max_new_tokens reached).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Sequence

from searchlearn.generation.base import Completion, GenerationStats, SamplingParams


class HFGenerator:
    def __init__(self, model_dir: str, batch_size: int = 32, seed: int = 0, device: str = "auto"):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.device = _resolve_device(device)
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        # Decoder-only batching must pad on the left so every row's last prompt token
        # sits at the same position, right before the first generated one.
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        # bf16 on GPU like vLLM; fp32 on CPU, where bf16 matmuls were not faster here.
        dtype = torch.float32 if self.device == "cpu" else torch.bfloat16
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(self.device).eval()
        self.eos_ids = _eos_ids(self.model.generation_config.eos_token_id, self.tokenizer.eos_token_id)
        self.batch_size = batch_size
        self.stats = GenerationStats()
        # A private RNG state, swapped in around each call: samples depend only on the
        # seed and this generator's own call sequence, not on whoever else draws from
        # torch's global RNG in between (training, an in-process vLLM engine's reseed).
        with torch.random.fork_rng(devices=self._rng_devices()):
            torch.manual_seed(seed)
            self._rng_state = _get_rng_state(self.device)

    def generate(self, prompts: Sequence[str], params: SamplingParams) -> list[list[Completion]]:
        from tqdm.auto import tqdm

        start = time.perf_counter()
        # Greedy samples are identical: compute one per prompt and copy it. Each copy
        # keeps its length as num_tokens; stats.tokens counts only what was computed.
        reps = 1 if params.greedy else params.n
        rows = [p for p in prompts for _ in range(reps)]
        chunks = [rows[i:i + self.batch_size] for i in range(0, len(rows), self.batch_size)]
        flat: list[Completion] = []
        for chunk in tqdm(chunks, desc="hf generate", unit="batch", disable=len(chunks) <= 1):
            flat.extend(self._generate_batch(chunk, params))
        out = [[dataclasses.replace(flat[i * reps + j % reps]) for j in range(params.n)]
               for i in range(len(prompts))]
        self.stats.add(len(prompts), out, time.perf_counter() - start)
        self.stats.tokens -= sum(c.num_tokens for cs in out for c in cs) - sum(c.num_tokens for c in flat)
        return out

    def _generate_batch(self, prompts: list[str], params: SamplingParams) -> list[Completion]:
        import torch

        enc = self.tokenizer(prompts, return_tensors="pt", padding=True).to(self.device)
        with torch.inference_mode(), torch.random.fork_rng(devices=self._rng_devices()):
            _set_rng_state(self.device, self._rng_state)
            out = self.model.generate(
                **enc, generation_config=self._generation_config(params), tokenizer=self.tokenizer
            )
            self._rng_state = _get_rng_state(self.device)
        generated = out[:, enc["input_ids"].shape[1]:].tolist()  # [batch, new tokens]
        return [self._finish(ids, params) for ids in generated]

    def _generation_config(self, params: SamplingParams):
        """Every sampling knob set explicitly: generate() fills unset ones from the
        checkpoint's generation_config.json and then from its own defaults (top_k=50),
        while vLLM applies neither to explicit SamplingParams."""
        from transformers import GenerationConfig

        sampling = {} if params.greedy else {"temperature": params.temperature, "top_p": params.top_p, "top_k": 0}
        return GenerationConfig(
            max_new_tokens=params.max_new_tokens,
            do_sample=not params.greedy,
            repetition_penalty=1.0,
            eos_token_id=sorted(self.eos_ids),
            pad_token_id=self.tokenizer.pad_token_id,
            stop_strings=list(params.stop) or None,
            **sampling,
        )

    def _finish(self, ids: list[int], params: SamplingParams) -> Completion:
        """Cut one generated row at its first EOS or stop string and count its tokens.

        Finished rows are padded until the whole batch stops, and the pad id can be a
        real token (SmolLM2 pads with EOS), so the end is found from EOS and stop
        strings, never by looking for padding.
        """
        end, reason = len(ids), "length"
        eos_at = next((i for i, t in enumerate(ids) if t in self.eos_ids), None)
        if eos_at is not None:
            end, reason = eos_at + 1, "stop"
        text = self._decode(ids[:end])
        cut = stop_cut(text, params.stop)
        if cut is not None:
            text, end, reason = text[:cut], self._tokens_to_stop(ids, end, params.stop), "stop"
        elif reason == "length" and len(ids) < params.max_new_tokens:
            # HF also matches a stop string that starts inside the prompt; vLLM (and this
            # backend's text) only look at generated text. Count what was generated.
            while end > 0 and ids[end - 1] == self.tokenizer.pad_token_id:
                end -= 1
            text, reason = self._decode(ids[:end]), "stop"
        return Completion(text=text, num_tokens=end, finish_reason=reason)

    def _tokens_to_stop(self, ids: list[int], hi: int, stop: Sequence[str]) -> int:
        """Fewest leading tokens whose text contains a stop string (binary search: the
        text of a longer prefix extends the text of a shorter one)."""
        lo = 1
        while lo < hi:
            mid = (lo + hi) // 2
            if stop_cut(self._decode(ids[:mid]), stop) is None:
                lo = mid + 1
            else:
                hi = mid
        return hi

    def _decode(self, ids: list[int]) -> str:
        # No clean-up of tokenization spaces: vLLM's incremental detokenizer does none.
        return self.tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    def reseed(self, seed: int) -> None:
        """Restart this generator's sampling stream (see Generator.reseed)."""
        import torch

        with torch.random.fork_rng(devices=self._rng_devices()):
            torch.manual_seed(seed)
            self._rng_state = _get_rng_state(self.device)

    def _rng_devices(self) -> list:
        return [] if self.device == "cpu" else [self.device]

    def close(self) -> None:
        import gc

        self.model = None
        gc.collect()


def stop_cut(text: str, stop: Sequence[str]) -> int | None:
    """Index just past the earliest-ending stop string in `text`, or None."""
    ends = [text.find(s) + len(s) for s in stop if s and s in text]
    return min(ends) if ends else None


def _eos_ids(config_eos, tokenizer_eos) -> set[int]:
    ids = set() if config_eos is None else {config_eos} if isinstance(config_eos, int) else set(config_eos)
    if tokenizer_eos is not None:
        ids.add(tokenizer_eos)
    return ids


def _resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _get_rng_state(device: str):
    import torch

    return torch.get_rng_state() if device == "cpu" else (torch.get_rng_state(), torch.cuda.get_rng_state(device))


def _set_rng_state(device: str, state) -> None:
    import torch

    if device == "cpu":
        torch.set_rng_state(state)
    else:
        torch.set_rng_state(state[0])
        torch.cuda.set_rng_state(state[1], device)
