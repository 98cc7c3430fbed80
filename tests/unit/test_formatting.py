from __future__ import annotations

from searchlearn.formatting import (answer_line, build_prompt, format_solution, is_answer_step, is_complete,
                                    join_steps, split_steps)


def test_format_solution_strips_steps_and_ends_with_answer_line():
    text = format_solution(["  12 + 5 = 17. ", "", "17 - 3 = 14."], "14")
    assert text == "12 + 5 = 17.\n17 - 3 = 14.\nThe answer is 14.\n"
    assert answer_line("14") == "The answer is 14."


def test_split_and_join_round_trip():
    solution = format_solution(["Tom buys 5 more: 12 + 5 = 17.", "He gives 3 away: 17 - 3 = 14."], "14")
    steps = split_steps(solution)
    assert steps == ["Tom buys 5 more: 12 + 5 = 17.", "He gives 3 away: 17 - 3 = 14.", "The answer is 14."]
    assert join_steps(steps) == solution
    assert split_steps(join_steps(steps)) == steps


def test_split_steps_drops_blank_lines_and_whitespace():
    assert split_steps("\n  a = 1.  \n\n\tb = 2.\n") == ["a = 1.", "b = 2."]
    assert split_steps("") == []


def test_split_steps_stops_at_the_answer_line():
    completion = "12 + 5 = 17.\nThe answer is 17.\nBut also 3 + 3 = 6.\nThe answer is 6.\n"
    assert split_steps(completion) == ["12 + 5 = 17.", "The answer is 17."]


def test_answer_line_detection():
    assert is_answer_step("The answer is 5.")
    assert is_answer_step("  the answer is 5")
    assert not is_answer_step("So the answer is 5.")  # only a line that starts with it ends a solution
    assert not is_answer_step("The answers are 5 and 6.")
    assert is_complete("a\nThe answer is 3.\n")
    assert not is_complete("a\nb\n")


def test_build_prompt_is_plain_text():
    assert build_prompt("  What is 2 + 3?\n") == "Question: What is 2 + 3?\nSolution:\n"
