"""The problem type every source produces, and its JSONL form."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence


@dataclass(frozen=True)
class Problem:
    """One verifiable problem.

    `answer` is the canonical final answer (a number as a string). `solution` is a
    worked solution in the project's step format (one step per line, then the final
    answer line), or None for RL-style data that only has answers.
    """

    id: str
    question: str
    answer: str
    solution: str | None = None
    meta: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, row: dict) -> "Problem":
        return cls(
            id=str(row["id"]),
            question=str(row["question"]),
            answer=str(row["answer"]),
            solution=row.get("solution"),
            meta=dict(row.get("meta") or {}),
        )


class DatasetFormatError(ValueError):
    """A data file has a malformed row; the message names the file and line."""


def write_problems(path: str | Path, problems: Iterable[Problem]) -> None:
    from searchlearn.artifacts import atomic_write_text

    lines = [json.dumps(p.to_dict(), sort_keys=True) for p in problems]
    atomic_write_text(path, "\n".join(lines) + ("\n" if lines else ""))


def read_problems(path: str | Path) -> list[Problem]:
    out = []
    for lineno, row in iter_jsonl(path):
        try:
            out.append(Problem.from_dict(row))
        except (KeyError, TypeError) as e:
            raise DatasetFormatError(f"{path}:{lineno}: bad problem row ({e!r})") from e
    return out


# A row of a problem or search file is a few KB; a longer line is a broken or hostile
# file, and reading it whole (50 MB on one line) stalled tokenizer training for minutes.
MAX_LINE_CHARS = 1_000_000


def iter_jsonl(path: str | Path, max_line_chars: int = MAX_LINE_CHARS) -> Iterable[tuple[int, dict]]:
    """Yield (line number, object) for each non-blank line, with clear errors. Lines
    starting with '#' are comments (a data file's header; no JSON value starts so)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"data file not found: {path}")
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(iter(lambda: f.readline(max_line_chars + 1), ""), start=1):
            if len(line) > max_line_chars:
                raise DatasetFormatError(f"{path}:{lineno}: line longer than {max_line_chars:,} characters")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DatasetFormatError(f"{path}:{lineno}: not valid JSON ({e.msg})") from e
            if not isinstance(row, dict):
                raise DatasetFormatError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
            yield lineno, row


def split_ids_disjoint(train: Sequence[Problem], test: Sequence[Problem]) -> bool:
    return not ({p.question for p in train} & {p.question for p in test})
