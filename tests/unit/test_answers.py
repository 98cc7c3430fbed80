"""Answer extraction is the verifier for every search and learning step, and it reads
untrusted model text: it must parse, never execute, and never hang."""

from __future__ import annotations

import inspect
import re
import time
from fractions import Fraction

import pytest

from searchlearn import answers
from searchlearn.answers import extract_answer, is_correct, normalize_reference, parse_number


@pytest.mark.parametrize("text, expected", [
    ("Tom has 17.\nThe answer is 14.\n", "14"),
    ("The answer is: 72", "72"),
    ("The answer is 72 apples.", "72"),
    ("the ANSWER is 9", "9"),
    ("The answer is −7.", "-7"),  # unicode minus
    ("The answer is -7.", "-7"),
    ("The answer is 1,234.", "1234"),
    ("The answer is $1,200.50.", "1200.5"),
    ("The answer is $ 18", "18"),
    ("The answer is 45%.", "45"),
    ("The answer is 3/4.", "0.75"),
    ("The answer is 7/3.", "7/3"),
    ("The answer is 2.50", "2.5"),
    ("Natalia sold 72 clips.\n#### 72", "72"),
    ("So we get \\boxed{5}.", "5"),
    ("The answer is 3.\nWait.\nThe answer is 4.\n", "4"),  # last answer line wins
    ("#### 5\nThe answer is 6.", "6"),  # the step format's own line beats other markers
])
def test_extract_answer_parses_supported_forms(text, expected):
    assert extract_answer(text) == expected


@pytest.mark.parametrize("text", [
    None, "", "   ", "no number here", "The answer is", "The answer is seven.",
    "The answer is 1e999",  # must not become 1 (its prefix) or infinity
    "The answer is 1,000,00",  # broken digit grouping is not read as 1000
    "The answer is 5/0.",
    "The answer is " + "9" * 5000,
])
def test_extract_answer_returns_none_for_unusable_text(text):
    assert extract_answer(text) is None


def test_code_in_answer_is_never_executed(monkeypatch):
    import os

    def boom(*_args, **_kwargs):
        raise AssertionError("answer text was executed")

    monkeypatch.setattr(os, "system", boom)
    for text in ["The answer is __import__('os').system('x')",
                 "#### __import__('os').system('x')", "\\boxed{__import__('os').system('x')}"]:
        assert extract_answer(text) is None
        assert not is_correct(text, "0")


def test_answers_module_has_no_eval_or_exec():
    source = inspect.getsource(answers)
    # builtin calls only: `re.compile(` is an attribute and is fine
    assert not re.search(r"(?<![.\w])(eval|exec|compile|__import__)\s*\(", source)


@pytest.mark.parametrize("text", [
    "x" * 1_000_000,
    "The answer is " + "9" * 1_000_000,
    "The answer is " * 70_000,
    "1,2" * 300_000,
    # Whitespace runs backtrack polynomially when quantifiers are unbounded: the first
    # took ~100 s at 2,000 spaces before the fix (and ~6 s at this 800).
    "The answer is" + " " * 800 + "x",
    "####" + " " * 20_000 + "x",
    "The answer is 5" + " " * 20_000 + "x",
    "\\boxed{" + " " * 20_000 + "x",
])
@pytest.mark.timeout(30)  # a regression should fail, not hang the suite
def test_hostile_strings_return_quickly(text):
    start = time.perf_counter()
    result = extract_answer(text)
    assert time.perf_counter() - start < 0.5
    assert result in (None, "5")


def test_many_answer_lines_still_take_the_last():
    text = "".join(f"The answer is {i}.\n" for i in range(50_000))
    assert extract_answer(text) == "49999"


@pytest.mark.parametrize("text, expected", [
    ("1,000", Fraction(1000)), ("$12", Fraction(12)), ("-3.5", Fraction(-7, 2)), ("3/4", Fraction(3, 4)),
    ("50%", Fraction(50)), (" 8. ", Fraction(8)), ("−2", Fraction(-2)),
])
def test_parse_number_is_exact(text, expected):
    assert parse_number(text) == expected


@pytest.mark.parametrize("text", [None, "", "1.2.3", "abc", "1e5", "inf", "nan", "0x10", "4/0", "9" * 41])
def test_parse_number_rejects_non_numbers(text):
    assert parse_number(text) is None


def test_normalize_reference_canonicalizes_and_rejects():
    assert normalize_reference("1,000") == "1000"
    assert normalize_reference("72.0") == "72"
    assert normalize_reference(" 0.50 ") == "0.5"
    assert normalize_reference(18) == "18"
    for bad in ["seventy", "", "9" * 5000, None]:
        with pytest.raises(ValueError):
            normalize_reference(bad)


def test_is_correct_compares_values_not_strings():
    assert is_correct("The answer is 1,000.", "1000")
    assert is_correct("The answer is 1000.0", "1,000")
    assert is_correct("The answer is 0.75", "3/4")
    assert not is_correct("The answer is 12.", "1")
    assert not is_correct("The answer is 12.", "not a number")
    assert not is_correct(None, "12")
