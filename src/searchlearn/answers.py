"""Outcome verification: parse a final answer out of model text and compare it to
the reference. Parsing only: nothing here evaluates generated text as code."""

from __future__ import annotations

import re
from fractions import Fraction

# Long digit strings are hostile or broken; refusing them also keeps clear of
# Python's int-from-str digit limit.
MAX_NUMBER_CHARS = 40

# Whitespace runs are bounded ({0,3}): adjacent unbounded `\s*` groups backtrack
# cubically, and "The answer is" + 2,000 spaces took ~100 s. The lookahead rejects a
# number that runs on into letters or digits ("1e999", "1,000,00") instead of grading
# its prefix.
_NUMBER = (r"[-+−]?\s?\$?\s?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s?/\s?\d+)?%?"
           r"(?!\w|[.,]\d)")
_ANSWER_IS = re.compile(r"answer\s{1,3}is\s{0,3}:?\s{0,3}(" + _NUMBER + r")", re.IGNORECASE)
_HASHES = re.compile(r"####\s{0,3}(" + _NUMBER + r")")
_BOXED = re.compile(r"\\boxed\{\s{0,3}(" + _NUMBER + r")\s{0,3}\}")


def parse_number(text: str) -> Fraction | None:
    """Parse '1,234', '-3.5', '$12', '3/4', '50%' into an exact Fraction, else None."""
    if text is None:
        return None
    s = text.strip().replace("−", "-").replace("$", "").replace(",", "").replace(" ", "")
    s = s.rstrip(".")
    if s.endswith("%"):
        s = s[:-1]
    if not s or len(s) > MAX_NUMBER_CHARS:
        return None
    if not re.fullmatch(r"[-+]?\d+(?:\.\d+)?(?:/\d+)?", s):
        return None
    try:
        value = Fraction(s)
    except (ValueError, ZeroDivisionError):
        return None
    return value


def extract_answer(completion: str) -> str | None:
    """The final answer a completion commits to, as a canonical string, or None.

    Looks for the last 'The answer is N', then GSM8K's '#### N', then '\\boxed{N}'.
    """
    if not completion:
        return None
    for pattern in (_ANSWER_IS, _HASHES, _BOXED):
        matches = pattern.findall(completion)
        if matches:
            value = parse_number(matches[-1])
            return canonical(value) if value is not None else None
    return None


def canonical(value: Fraction) -> str:
    """'12', '-3.5', or '7/3' for non-terminating fractions."""
    if value.denominator == 1:
        return str(value.numerator)
    as_float = float(value)
    if Fraction(repr(as_float)) == value:
        return repr(as_float)
    return f"{value.numerator}/{value.denominator}"


def normalize_reference(answer: str) -> str:
    """Canonicalize a dataset's reference answer; raises ValueError if unparseable."""
    value = parse_number(str(answer))
    if value is None:
        raise ValueError(f"reference answer is not a number: {answer!r}")
    return canonical(value)


def is_correct(completion: str, reference: str) -> bool:
    pred = extract_answer(completion)
    if pred is None:
        return False
    ref = parse_number(reference)
    return ref is not None and parse_number(pred) == ref
