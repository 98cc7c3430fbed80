"""Bring-your-own-data: GSM8K-format rows ({"question", "answer": "... #### 72"})
from a local JSONL file or a dataset hub, converted to Problems in the step format."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable

from searchlearn.answers import normalize_reference
from searchlearn.formatting import format_solution, is_answer_step
from searchlearn.problems.base import DatasetFormatError, Problem, iter_jsonl

_CALCULATOR = re.compile(r"<<[^<>]*>>")  # GSM8K's calculator annotations: "48/2 = <<48/2=24>>24"
# GSM8K rows are under 2 KB and MATH-style ones under 10 KB. A row far longer is a
# broken file, and its text would become the tiny model's tokenizer corpus.
MAX_ROW_CHARS = 64_000


def convert_row(row: dict, default_id: str) -> Problem:
    """One GSM8K row as a Problem; raises ValueError saying what is wrong with it."""
    for key in ("question", "answer"):
        if not isinstance(row.get(key), str) or not row[key].strip():
            raise ValueError(f"{key!r} is missing or not a non-empty string")
    rationale, sep, final = row["answer"].rpartition("####")
    if not sep:
        raise ValueError("answer has no '#### <number>' line")
    try:
        answer = normalize_reference(final.strip())
    except ValueError:
        raise ValueError(f"final answer is not a number: {final.strip()!r}") from None
    steps = rationale_steps(rationale)
    meta = {"source": "gsm8k", "num_steps": len(steps)}
    equations = annotated_equations(rationale)
    if equations:
        meta["equations"] = equations
    return Problem(id=str(row.get("id") or default_id), question=row["question"].strip(), answer=answer,
                   solution=format_solution(steps, answer), meta=meta)


_ANNOTATION = re.compile(r"<<\s*(-?[\d.]+)\s*([-+*/])\s*(-?[\d.]+)\s*=\s*(-?[\d.]+)\s*>>")


def annotated_equations(rationale: str) -> list[list] | None:
    """The reference equations of a GSM8K rationale, from its calculator annotations
    (`<<48/2=24>>`), for the step oracle (reward/oracle.py); None unless every
    annotation is a single operation."""
    found = _CALCULATOR.findall(rationale)
    parsed = [_ANNOTATION.fullmatch(a) for a in found]
    if not found or not all(parsed):
        return None
    return [[m.group(1), m.group(2), m.group(3), m.group(4)] for m in parsed]


def rationale_steps(rationale: str) -> list[str]:
    """A GSM8K rationale as steps: annotations stripped, one non-empty line each."""
    lines = (_CALCULATOR.sub("", line).strip() for line in rationale.splitlines())
    # A line that already reads "The answer is ..." would end the solution early under
    # split_steps, so it is dropped; the appended answer line says the same thing.
    return [line for line in lines if line and not is_answer_step(line)]


def load_jsonl(path: str | Path, limit: int = 0, split: str = "") -> list[Problem]:
    """All rows of a GSM8K JSONL file, validated in full before the first `limit` are
    returned (0 = all), so a bad row fails the run before any heavy work."""
    prefix = f"gsm8k-{split or Path(path).stem}"
    problems = []
    for index, (lineno, row) in enumerate(iter_jsonl(path, max_line_chars=MAX_ROW_CHARS)):
        try:
            problems.append(convert_row(row, f"{prefix}-{index:05d}"))
        except ValueError as e:
            raise DatasetFormatError(f"{path}:{lineno}: {e}") from None
    return _limited(problems, limit)


def load_hub(hub_id: str, config: str, split: str, limit: int = 0) -> list[Problem]:
    """A GSM8K-format split through `datasets.load_dataset` (a hub id or a local
    dataset directory), validated in full like load_jsonl."""
    from datasets import load_dataset  # heavy import; only this source needs it

    rows: Iterable[dict] = load_dataset(hub_id, config, split=split)
    problems = []
    for index, row in enumerate(rows):
        try:
            problems.append(convert_row(row, f"gsm8k-{split}-{index:05d}"))
        except ValueError as e:
            raise DatasetFormatError(f"{hub_id} ({config}, {split}) row {index}: {e}") from None
    return _limited(problems, limit)


def _limited(problems: list[Problem], limit: int) -> list[Problem]:
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    return problems[:limit] if limit else problems
