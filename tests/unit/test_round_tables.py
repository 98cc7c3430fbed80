"""A round's data as per-problem tables, from hand-made search results and eval records."""

from __future__ import annotations

import json

from searchlearn.problems.base import Problem, write_problems
from searchlearn.round_tables import EVAL_COLUMNS, SEARCH_COLUMNS, columns, eval_table, search_samples, search_table


def _candidate(answer: str, correct: bool) -> dict:
    return {"answer": answer, "correct": correct, "num_tokens": 5, "score": None, "step_scores": None,
            "text": f"2 + 3 = {answer}.\nThe answer is {answer}.\n"}


def test_one_search_row_per_problem_with_the_pick_and_k_of_n(tmp_path):
    results = [
        {"problem_id": "p1", "question": "What is 2 + 3?", "reference": "5", "best": 1, "algorithm": "best_of_n",
         "candidates": [_candidate("4", False), _candidate("5", True), _candidate("5", True)], "extra": {}},
        {"problem_id": "p2", "question": "What is 1 + 1?", "reference": "2", "best": 0, "algorithm": "best_of_n",
         "candidates": [_candidate("3", False), _candidate("4", False), _candidate("2", True)], "extra": {}},
    ]
    path = tmp_path / "results.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in results))
    rows = search_table(path)
    assert [(r["question"], r["chosen_answer"], r["correct"], r["k_of_n_correct"]) for r in rows] == [
        ("What is 2 + 3?", "5", True, "2/3"), ("What is 1 + 1?", "3", False, "1/3")]
    assert rows[0]["best_solution"].endswith("The answer is 5.\n")
    table = columns(rows, SEARCH_COLUMNS)
    assert list(table) == SEARCH_COLUMNS and not [c for c in table if "." in c]
    samples = search_samples(rows, n=2)
    assert samples["sample 1"].startswith("right 5 (ref 5, 2/3 correct): What is 2 + 3?")


def test_eval_rows_take_their_questions_from_the_problem_file(tmp_path):
    write_problems(tmp_path / "test.jsonl", [Problem("t1", "How many pens?", "7"), Problem("t2", "How many?", "3")])
    records = [{"id": "t2", "reference": "3", "greedy": "The answer is 3.\n", "greedy_answer": "3",
                "greedy_correct": True, "maj_answer": "3", "maj_correct": True, "n_correct": 3}]
    (tmp_path / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    [row] = eval_table(tmp_path / "records.jsonl", tmp_path / "test.jsonl", k=4)
    assert row["question"] == "How many?" and row["k_of_n_correct"] == "3/4" and row["greedy_correct"] is True
    assert list(columns([row], EVAL_COLUMNS)) == EVAL_COLUMNS
    assert eval_table(tmp_path / "records.jsonl", tmp_path / "test.jsonl", k=None)[0]["k_of_n_correct"] is None
