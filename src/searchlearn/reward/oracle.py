"""An exact step oracle for problems whose reference computation is known.

The arithmetic source records each problem's reference equations (`meta["equations"]`,
`[a, op, b, c]` per step, written by the generator); GSM8K rows give theirs through
the calculator annotations of the rationale (`<<48/2=24>>`). With those, each step of
a solution can be checked exactly, by parsing, never by evaluating model text:

- a step that states a computation (`... : 65 + 14 = 79.`) is right when it is one of
  the reference equations not used yet (operands in either order for + and *), its
  operands are quantities the solver has at that point (numbers of the question, the
  small constants its words imply, results of earlier right steps) and its arithmetic
  holds. A chained expression (`65 + 14 - 31 = 48`) is right when its arithmetic holds,
  its numbers are available and its value is a reference result;
- a step without a computation is right unless it states a number the solver does not
  have (a made-up quantity);
- the answer line is right when its number is the reference answer and was derived
  (or given).

A solution's first wrong step ends it: every later step is wrong too, since a chain
that went wrong cannot be trusted to reach the answer by the problem's route. So the
oracle's step labels are Math-Shepherd's hard labels with the rollouts replaced by the
truth: 1 before the first wrong step, 0 from it on.

What it cannot see: a correct solution that takes a *different* route than the
reference (regrouping the events) is marked wrong at its first foreign step. The
policies here are trained on the reference's one-event-per-step format, so this is
rare; the oracle is a measuring stick and an upper bound for labels, and the default
labels stay Monte-Carlo, which need no oracle.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Sequence

from searchlearn.answers import parse_number
from searchlearn.formatting import is_answer_step

_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_OPS = {"+": "+", "-": "-", "−": "-", "*": "*", "×": "*", "x": "*", "/": "/", "÷": "/"}
# An expression: number (op number)+ = number. `x` counts as times only between numbers.
_EXPR = re.compile(rf"(-?\$?(?:{_NUM})(?:\s*[-+−*×x/÷]\s*\$?(?:{_NUM}))+)\s*=\s*(-?\$?(?:{_NUM}))")
_TOKEN = re.compile(rf"\$?({_NUM})|([-+−*×x/÷])")
# A number as a question or step states it (group 1: without sign or $); reward/corrupt.py
# finds the number a step commits to with it too.
NUMBERS = re.compile(rf"(?<![\w.])-?\$?({_NUM})(?![\w])")
# Quantities the words of a question imply ("twice as many", "half of", "a dozen").
_WORD_NUMBERS = {
    "twice": 2, "double": 2, "half": 2, "halves": 2, "three times": 3, "triple": 3, "third": 3, "thirds": 3,
    "quarter": 4, "quarters": 4, "dozen": 12, "pair": 2, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
    "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "hour": 60, "hours": 60,
    "minute": 60, "minutes": 60, "week": 7, "weeks": 7, "day": 24, "days": 24, "percent": 100, "%": 100,
}

Equation = tuple[Fraction, str, Fraction, Fraction]


@dataclass(frozen=True)
class Verdict:
    """Per-step truth for one solution: `correct[j]` for step j (False from the first
    wrong step on), `first_wrong` (None if no step is wrong) and whether the solution
    reached the reference answer by a right chain."""

    correct: list[bool]
    first_wrong: int | None
    solved: bool

    def labels(self) -> list[float]:
        return [1.0 if ok else 0.0 for ok in self.correct]


def reference_equations(meta: dict) -> list[Equation] | None:
    """The problem's reference equations from its meta, or None when it has none."""
    rows = (meta or {}).get("equations")
    if not rows:
        return None
    return [(Fraction(str(a)), _OPS[str(op)], Fraction(str(b)), Fraction(str(c))) for a, op, b, c in rows]


def check(question: str, answer: str, equations: Sequence[Equation], steps: Sequence[str]) -> Verdict:
    """The oracle's verdict on `steps` (a solution split with formatting.split_steps)."""
    known = question_quantities(question)
    unused = list(equations)
    results = {c for _, _, _, c in equations}
    reference = parse_number(answer)
    correct, solved = [], False
    for step in steps:
        ok = _check_step(step, known, unused, results)
        if ok and is_answer_step(step):
            value = _answer_value(step)
            ok = value is not None and value == reference and value in known
            solved = ok
        correct.append(ok)
        if not ok:
            break
    first_wrong = len(correct) - 1 if correct and not correct[-1] else None
    correct += [False] * (len(steps) - len(correct))
    return Verdict(correct=correct, first_wrong=first_wrong, solved=solved)


def question_quantities(question: str) -> set[Fraction]:
    """Numbers the question gives, plus the constants its words imply."""
    known = {v for v in (parse_number(m.group(1)) for m in NUMBERS.finditer(question)) if v is not None}
    lowered = question.lower()
    known |= {Fraction(v) for word, v in _WORD_NUMBERS.items() if re.search(rf"\b{re.escape(word)}\b", lowered)
              or (word == "%" and "%" in lowered)}
    return known | {Fraction(1), Fraction(100)}  # per-unit and percent conversions need no words


def _check_step(step: str, known: set[Fraction], unused: list[Equation], results: set[Fraction]) -> bool:
    """Is this step right, given the quantities known so far? Updates `known` and
    `unused` when it is."""
    computation = _computation(step)
    if computation is None:
        if is_answer_step(step):
            return True  # judged by the caller
        stated = {parse_number(m.group(1)) for m in NUMBERS.finditer(step)}
        return all(v in known for v in stated if v is not None)
    numbers, ops, result, _ = computation
    if not _holds(computation):
        return False  # malformed, or the arithmetic is wrong
    if not all(v in known for v in numbers):
        return False  # an operand the solver does not have
    if len(ops) == 1:
        eq = _matching(numbers[0], ops[0], numbers[1], result, unused)
        if eq is None:
            return False  # right arithmetic, but not a step of the problem's computation
        unused.remove(eq)
    elif result not in results:
        return False
    known.add(result)
    return True


def arithmetic_holds(step: str, rounded: bool = False) -> bool | None:
    """Does the computation a step states (its last `a op b ... = c`) hold, exactly?
    None when it states none; False when it is malformed. Whether it is the problem's
    computation is not asked (a right sum of the wrong quantities holds): it tells an
    arithmetic slip from a wrong choice of operands. With `rounded`, a result written
    with d decimals also holds when the exact value rounds to it at d decimals
    (`10 / 3 = 3.33`); one written without decimals must be exact. Parsed, never
    evaluated as code."""
    computation = _computation(step)
    return None if computation is None else _holds(computation, rounded)


def _holds(computation: tuple, rounded: bool = False) -> bool:
    """arithmetic_holds for a step's already-parsed computation (`_computation`)."""
    numbers, ops, result, written = computation
    value = _evaluate(numbers, ops) if numbers is not None else None
    if value is None or result is None:
        return False
    if value == result:
        return True
    decimals = len(written.rpartition(".")[2]) if rounded and "." in written else 0
    return decimals > 0 and _round_half_away(value, decimals) == result


def _round_half_away(value: Fraction, decimals: int) -> Fraction:
    """`value` rounded to `decimals` places, halves away from zero (as people write)."""
    scale = 10 ** decimals
    units = (abs(value) * scale * 2 + 1) // 2  # floor(|v|·scale + 1/2)
    return Fraction(int(units) * (1 if value >= 0 else -1), scale)


def _computation(step: str) -> tuple[list[Fraction] | None, list[str], Fraction | None, str] | None:
    """The step's last expression (`a op b ... = c`) as its operands, operators,
    stated result and that result as written (operands None when malformed); None
    when it states none."""
    match = None
    for match in _EXPR.finditer(step):
        pass  # the step's computation is its last expression
    if match is None:
        return None
    numbers, ops = _tokens(match.group(1))
    written = match.group(2).replace("$", "")
    return numbers, ops, parse_number(written), written


def _matching(a: Fraction, op: str, b: Fraction, c: Fraction, unused: list[Equation]) -> Equation | None:
    for eq in unused:
        ea, eop, eb, ec = eq
        if eop != op or ec != c:
            continue
        if (ea, eb) == (a, b) or (op in "+*" and (ea, eb) == (b, a)):
            return eq
    return None


def _tokens(expr: str) -> tuple[list[Fraction] | None, list[str]]:
    numbers, ops, expect_number = [], [], True
    negative = expr.lstrip().startswith("-")
    for m in _TOKEN.finditer(expr.lstrip().lstrip("-")):
        if m.group(1) is not None and expect_number:
            numbers.append(parse_number(m.group(1)))
            expect_number = False
        elif m.group(2) is not None and not expect_number:
            ops.append(_OPS[m.group(2)])
            expect_number = True
        else:
            return None, []
    if expect_number or any(n is None for n in numbers):
        return None, []
    if negative:
        numbers[0] = -numbers[0]
    return numbers, ops


def _evaluate(numbers: list[Fraction], ops: list[str]) -> Fraction | None:
    """`numbers` joined by `ops` with the usual precedence, exactly (no eval)."""
    terms, pending = [numbers[0]], []
    for op, n in zip(ops, numbers[1:]):
        if op in "*/":
            if op == "/" and n == 0:
                return None
            terms[-1] = terms[-1] * n if op == "*" else terms[-1] / n
        else:
            pending.append(op)
            terms.append(n)
    total = terms[0]
    for op, n in zip(pending, terms[1:]):
        total = total + n if op == "+" else total - n
    return total


def _answer_value(step: str) -> Fraction | None:
    from searchlearn.answers import extract_answer

    value = extract_answer(step)
    return parse_number(value) if value is not None else None
