"""Outcome verification: parse a final answer out of model text and compare it to
the reference. Parsing only: nothing here evaluates generated text as code.

Policy, so that a grader the policy is trained against cannot be gamed:
- the answer is the number right after the last "The answer is" (else the last
  GSM8K "#### N", else the last "\\boxed{N}");
- a line that holds any other digit after that number is refused (None), not
  graded by one of its numbers: "The answer is 5-3." is neither 5 nor 2, and
  "The answer is 3 or 4." is a hedge. Words may follow ("The answer is 72 apples.");
- only ASCII digits count ("٥" is not 5);
- values compare exactly (fractions), and the canonical form never uses exponent
  notation: "0.00001", not "1e-05".
"""

from __future__ import annotations

import re
from fractions import Fraction

# Long digit strings are hostile or broken; refusing them also keeps clear of
# Python's int-from-str digit limit.
MAX_NUMBER_CHARS = 40

# [0-9], not \d: \d matches every Unicode digit. re.ASCII makes \w ASCII too.
# Whitespace runs are bounded ({0,3}): adjacent unbounded `\s*` groups backtrack
# cubically, and "The answer is" + 2,000 spaces took ~100 s. The lookahead rejects a
# number that runs on into letters or digits ("1e999", "1,000,00") instead of grading
# its prefix.
_NUMBER = (r"[-+−]?\s?\$?\s?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?(?:\s?/\s?[0-9]+)?%?"
           r"(?!\w|[.,][0-9])")
_ANSWER_IS = re.compile(r"answer\s{1,3}is\s{0,3}:?\s{0,3}(" + _NUMBER + r")", re.IGNORECASE | re.ASCII)
_HASHES = re.compile(r"####\s{0,3}(" + _NUMBER + r")", re.ASCII)
_BOXED = re.compile(r"\\boxed\{\s{0,3}(" + _NUMBER + r")\s{0,3}\}", re.ASCII)
_PLAIN = re.compile(r"[-+]?[0-9]+(?:\.[0-9]+)?(?:/[0-9]+)?")


def parse_number(text: str) -> Fraction | None:
    """Parse '1,234', '-3.5', '$12', '3/4', '50%' into an exact Fraction, else None."""
    if text is None:
        return None
    s = str(text).strip().replace("−", "-").replace("$", "").replace(",", "").replace(" ", "")
    s = s.rstrip(".")
    if s.endswith("%"):
        s = s[:-1]
    if not s or len(s) > MAX_NUMBER_CHARS or not _PLAIN.fullmatch(s):
        return None
    try:
        return Fraction(s)
    except (ValueError, ZeroDivisionError):
        return None


def extract_value(completion: str) -> Fraction | None:
    """The value a completion commits to (see the module docstring), or None."""
    if not completion:
        return None
    for pattern in (_ANSWER_IS, _HASHES, _BOXED):
        last = None
        for last in pattern.finditer(completion):
            pass
        if last is not None:
            end = completion.find("\n", last.end())
            rest = completion[last.end(): None if end < 0 else end]
            if any(ch.isdigit() for ch in rest):  # another number on the answer line
                return None
            return parse_number(last.group(1))
    return None


def extract_answer(completion: str) -> str | None:
    """The final answer a completion commits to, as a canonical string, or None."""
    value = extract_value(completion)
    return None if value is None else canonical(value)


def canonical(value: Fraction) -> str:
    """'12', '-3.5', '0.00001': the exact decimal when it terminates in at most
    MAX_NUMBER_CHARS characters, else 'p/q' ('7/3'). One string per value, so
    majority votes count equal answers together."""
    decimal = _exact_decimal(value)
    if decimal is not None and len(decimal) <= MAX_NUMBER_CHARS:
        return decimal
    return f"{value.numerator}/{value.denominator}"


def _exact_decimal(value: Fraction) -> str | None:
    """The decimal digits of `value` when its denominator is 2^a * 5^b, else None."""
    rest, twos, fives = value.denominator, 0, 0
    while rest % 2 == 0:
        rest, twos = rest // 2, twos + 1
    while rest % 5 == 0:
        rest, fives = rest // 5, fives + 1
    if rest != 1:
        return None
    places = max(twos, fives)  # the fewest places that hold it: no trailing zeros
    digits = str(abs(value.numerator) * 10**places // value.denominator).rjust(places + 1, "0")
    text = f"{digits[:-places]}.{digits[-places:]}" if places else digits
    return f"-{text}" if value < 0 else text


def normalize_reference(answer: str) -> str:
    """Canonicalize a dataset's reference answer; raises ValueError if unparseable."""
    value = parse_number(str(answer))
    if value is None:
        raise ValueError(f"reference answer is not a number: {answer!r}")
    return canonical(value)


def is_correct(completion: str, reference: str) -> bool:
    pred, ref = extract_value(completion), parse_number(reference)
    return pred is not None and ref is not None and pred == ref
