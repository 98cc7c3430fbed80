"""The step format shared by SFT data, search, PRM labels and answer checking.

A solution is a list of steps, one per line, ending with a final answer line
`The answer is N.` Search algorithms expand one line at a time (stop at "\\n"),
the PRM scores the token that ends each line, and the verifier reads the last
answer line. Keeping all of that in one module keeps those pieces in agreement.
"""

from __future__ import annotations

import re

STEP_SEPARATOR = "\n"
ANSWER_PREFIX = "The answer is"
_ANSWER_LINE = re.compile(r"^\s*The answer is\b", re.IGNORECASE)


def build_prompt(question: str) -> str:
    """The policy's input. Plain text (no chat template) so every backend and the
    tiny from-scratch model see exactly the same tokens."""
    return f"Question: {question.strip()}\nSolution:\n"


def answer_line(answer: str) -> str:
    return f"{ANSWER_PREFIX} {answer}."


def format_solution(steps: list[str], answer: str) -> str:
    """Join reasoning steps and the final answer line into a completion string."""
    lines = [s.strip() for s in steps if s.strip()] + [answer_line(answer)]
    return STEP_SEPARATOR.join(lines) + STEP_SEPARATOR


def split_steps(completion: str) -> list[str]:
    """Split a completion into non-empty, stripped steps; nothing after the answer
    line counts (models often ramble on)."""
    steps = []
    for line in completion.split(STEP_SEPARATOR):
        line = line.strip()
        if not line:
            continue
        steps.append(line)
        if is_answer_step(line):
            break
    return steps


def join_steps(steps: list[str]) -> str:
    """Inverse of split_steps for the text a policy should produce."""
    return "".join(s.strip() + STEP_SEPARATOR for s in steps)


def is_answer_step(step: str) -> bool:
    return bool(_ANSWER_LINE.match(step))


def is_complete(completion: str) -> bool:
    """True once a completion contains a final answer line."""
    return any(is_answer_step(s) for s in split_steps(completion))
