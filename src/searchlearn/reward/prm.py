"""The process reward model at inference: step-end token positions and `PRMScorer`.

A PRM is a token-classification head (one logit) on a causal LM. Its input is
`build_prompt(question) + join_steps(steps)`, and step j's score is the sigmoid of
the logit at the *last token of step j*. Training (prm_train.py) uses the same
encoding, so train and inference cannot drift apart.

Why offsets, not a separator token id: tokenizers differ in how they cut the
step's trailing "\\n". The tiny tokenizer gives "." and "\\n" their own tokens;
Llama-3/Qwen-style pre-tokenizers merge ".\\n" into one token; a BPE trained
without a regex may merge "\\nThe" (the separator plus the *next* step's first
word). We label the last token that ends inside the step's character span: the
"\\n" or ".\\n" token when it is the step's own, and the token before it when the
newline is shared with the next step, because a causal model's score at a token
that already reads the next step would leak that step into this one's label.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Sequence

from searchlearn.formatting import STEP_SEPARATOR, build_prompt

PRM_CONFIG = "prm_config.json"


def solution_text(question: str, steps: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """The PRM's input text and each step's character span [start, end).

    The text equals build_prompt(question) + join_steps(steps); a span includes
    the step's trailing separator.
    """
    parts, spans = [build_prompt(question)], []
    pos = len(parts[0])
    for step in steps:
        piece = step.strip() + STEP_SEPARATOR
        spans.append((pos, pos + len(piece)))
        parts.append(piece)
        pos += len(piece)
    return "".join(parts), spans


def step_end_positions(offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]]) -> list[int | None]:
    """For each step span, the index of the last token whose end offset lies in
    (start, end]; None if no token ends inside the step (possible only when one
    token straddles the whole step, e.g. an empty step merged with its neighbours).

    Zero-width offsets (special tokens such as BOS) never carry a label.
    """
    ends = [b if b > a else -1 for a, b in offsets]
    positions: list[int | None] = []
    for start, end in spans:
        pos = None
        for t, e in enumerate(ends):
            if start < e <= end:
                pos = t
            elif e > end:
                break
        positions.append(pos)
    return positions


def encode_solutions(tokenizer, questions: Sequence[str], step_lists: Sequence[Sequence[str]],
                     max_length: int) -> list[tuple[list[int], list[int | None]]]:
    """For each solution: token ids (cut to max_length) and each step's label
    position (None if the step ends beyond max_length or cannot be located).
    One tokenizer call for the whole batch (fast tokenizers parallelise it)."""
    return [(ids, positions) for ids, positions, _ in encode_with_starts(tokenizer, questions, step_lists,
                                                                         max_length)]


def encode_with_starts(tokenizer, questions: Sequence[str], step_lists: Sequence[Sequence[str]],
                       max_length: int) -> list[tuple[list[int], list[int | None], int]]:
    """`encode_solutions` plus, per solution, the index of its first solution token
    (the first that ends past the prompt): where a verifier's labels and an implicit
    PRM's log-ratios start."""
    if not questions:
        return []
    texts, all_spans = zip(*(solution_text(q, s) for q, s in zip(questions, step_lists)))
    enc = tokenizer(list(texts), return_offsets_mapping=True, add_special_tokens=True)
    out = []
    for text, ids, offsets, spans in zip(texts, enc["input_ids"], enc["offset_mapping"], all_spans):
        positions = step_end_positions(offsets, spans)
        prompt_end = spans[0][0] if spans else len(text)
        start = next((t for t, (a, b) in enumerate(offsets) if b > a and b > prompt_end), len(ids))
        out.append((list(ids)[:max_length], [p if p is not None and p < max_length else None for p in positions],
                    start))
    return out


def pad_batch(seqs: Sequence[Sequence[int]], pad_id: int, multiple: int = 1):
    """Right-pad to a (B, T) LongTensor plus attention mask, T the longest length
    rounded up to a multiple of `multiple` (train.pad_to_multiple_of). Right padding
    keeps every label position equal to its unpadded index, and under causal
    attention the pad tokens after a position cannot change its logit."""
    import torch

    width = -(-max(len(s) for s in seqs) // multiple) * multiple
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[i, : len(s)] = 1
    return ids, mask


def length_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices in batches of similar length (less compute spent on padding), the
    longest batch first.

    Why longest first: scoring runs under keep_heap (no mmap, no trim), and when each
    batch needed a little more than the last, no freed block fitted the next one and
    the heap grew with the number of candidates (the implicit PRM's rerank of 3,200
    candidates was OOM-killed at 24 GiB). Longest first, every later batch fits in the
    blocks the first one freed, so the heap peaks at one batch's need."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[b: b + batch_size] for b in range(0, len(order), batch_size)]


def score_positions(
    model, tokenizer, questions: Sequence[str], step_lists: Sequence[Sequence[str]], batch_size: int, max_length: int
) -> list[list[float | None]]:
    """sigmoid(logit) at each step's end token; None where a step could not be placed
    (truncated). The model is used as is (the caller sets eval mode and loads it in
    the dtype it scores in)."""
    encoded = encode_solutions(tokenizer, questions, step_lists, max_length)
    return score_encoded(model, encoded, pad_token_id(tokenizer), batch_size)


def score_encoded(model, encoded: list[tuple[list[int], list[int | None]]], pad_id: int,
                  batch_size: int) -> list[list[float | None]]:
    """`score_positions` on already-encoded solutions, batched by length."""
    import torch

    device = next(model.parameters()).device
    out: list[list[float | None]] = [[] for _ in encoded]
    with torch.inference_mode():
        for chunk in length_batches([len(e[0]) for e in encoded], batch_size):
            ids, mask = pad_batch([encoded[i][0] for i in chunk], pad_id)
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits[..., 0]
            probs = torch.sigmoid(logits.float()).cpu()  # (B, T)
            for row, i in enumerate(chunk):
                out[i] = [None if p is None else float(probs[row, p]) for p in encoded[i][1]]
    return out


def pad_token_id(tokenizer) -> int:
    """Pad id for batching; SmolLM2-style tokenizers without one pad with EOS
    (harmless: padded positions are masked and never labelled)."""
    if tokenizer.pad_token_id is not None:
        return tokenizer.pad_token_id
    return tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0


def fill_missing(scores: Sequence[float | None], default: float = 0.5) -> list[float]:
    """A step that could not be scored (past the context) inherits the previous
    step's score; a leading gap gets `default`, the uninformative prior."""
    out, last = [], default
    for s in scores:
        last = last if s is None else s
        out.append(last)
    return out


def scoring_max_length(model) -> int:
    return int(getattr(model.config, "max_position_embeddings", None) or 2048)


def read_prm_config(path: str | Path) -> dict:
    cfg_path = Path(path) / PRM_CONFIG
    if not cfg_path.is_file():
        raise FileNotFoundError(f"not a trained reward model directory (no {PRM_CONFIG}): {path}")
    return json.loads(cfg_path.read_text(encoding="utf-8"))


def scoring_dtype(precision: str = "auto"):
    """Scoring is inference: bf16 weights where the hardware multiplies bf16 (no fp32
    master copy to keep), fp32 elsewhere or when asked."""
    import torch

    from searchlearn.learn.scaffold import resolve_precision

    return torch.bfloat16 if resolve_precision(precision) == "bf16" else torch.float32


def check_kind(config: dict, kind: str, path) -> None:
    if config.get("kind", "prm") != kind:
        raise ValueError(f"{path} holds a {config.get('kind')!r} model, not a {kind!r} one")


class PRMScorer:
    """StepScorer backed by a trained PRM directory (see prm_train.train_prm).

    `score` runs one batched forward pass per `batch_size` candidates; search
    calls it once per step with every live candidate, so the whole frontier is
    scored together. `stats` accumulates calls, sequences, tokens and seconds so
    callers can report scorer compute next to generation compute.
    """

    kind = "prm"
    # How a best-of-N comparison reads its step scores (evaluate-reranking): a process
    # model by its weakest step and by its last; an outcome model by its last.
    aggregations = ("min", "last")

    def __init__(self, prm_dir: str | Path, batch_size: int = 32, device: str | None = None,
                 max_length: int | None = None, precision: str = "auto"):
        import torch
        from transformers import AutoModelForTokenClassification, AutoTokenizer

        from searchlearn.memory import keep_heap

        config = read_prm_config(prm_dir)
        check_kind(config, self.kind, prm_dir)
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        model = AutoModelForTokenClassification.from_pretrained(prm_dir, dtype=scoring_dtype(precision))
        keep_heap()
        self._setup(model.to(device).eval(), AutoTokenizer.from_pretrained(prm_dir), config, batch_size, max_length)

    @classmethod
    def from_model(cls, model, tokenizer, config: dict, batch_size: int = 32, max_length: int | None = None):
        """A scorer over a model in memory (a trainer's, for its held-out evaluation)."""
        scorer = cls.__new__(cls)
        scorer._setup(model, tokenizer, config, batch_size, max_length)
        return scorer

    def _setup(self, model, tokenizer, config: dict, batch_size: int, max_length: int | None) -> None:
        self.model, self.tokenizer, self.config, self.batch_size = model, tokenizer, config, batch_size
        # Training's max_length is a compute knob; scoring only stops at the model's context.
        self.max_length = max_length or scoring_max_length(model)
        self.stats = {"calls": 0, "sequences": 0, "tokens": 0, "unscored_steps": 0, "seconds": 0.0}

    def score(self, questions: Sequence[str], step_lists: Sequence[Sequence[str]]) -> list[list[float]]:
        if len(questions) != len(step_lists):
            raise ValueError(f"{len(questions)} questions but {len(step_lists)} step lists")
        if not questions:
            return []
        start = time.perf_counter()
        encoded = encode_with_starts(self.tokenizer, questions, step_lists, self.max_length)
        raw = self._raw_scores(encoded)
        self.stats["calls"] += 1
        self.stats["tokens"] += sum(len(e[0]) for e in encoded)
        self.stats["sequences"] += len(questions)
        self.stats["unscored_steps"] += sum(s is None for r in raw for s in r)
        self.stats["seconds"] += time.perf_counter() - start
        return [self._per_step(r) for r in raw]

    def _raw_scores(self, encoded: list[tuple[list[int], list[int | None], int]]) -> list[list[float | None]]:
        """Each step's score where it could be placed, None elsewhere."""
        return score_encoded(self.model, [(ids, pos) for ids, pos, _ in encoded], pad_token_id(self.tokenizer),
                             self.batch_size)

    def _per_step(self, raw: list[float | None]) -> list[float]:
        return fill_missing(raw)
