"""A round's data as tables a person can read: one row per problem, with the question
first and no dotted column names (MLflow's table viewer renders a dotted name as an
empty column: it reads `a.b` as a nested path)."""

from __future__ import annotations

from pathlib import Path

from searchlearn.problems.base import iter_jsonl, read_problems

SEARCH_COLUMNS = ["question", "reference", "chosen_answer", "correct", "k_of_n_correct", "best_solution",
                  "problem_id"]
EVAL_COLUMNS = ["question", "reference", "greedy_answer", "greedy_correct", "maj_answer", "maj_correct",
                "k_of_n_correct", "greedy_solution", "problem_id"]


def search_table(results_path: str | Path) -> list[dict]:
    """One row per searched problem: the search's pick (its `best` candidate) and how
    many of the N candidates the verifier accepted."""
    rows = []
    for _, r in iter_jsonl(results_path):
        cands = r["candidates"]
        best = cands[r["best"]] if r.get("best") is not None and cands else {}
        rows.append({"problem_id": r["problem_id"], "question": r["question"], "reference": r["reference"],
                     "chosen_answer": best.get("answer"), "correct": bool(best.get("correct")),
                     "k_of_n_correct": f"{sum(bool(c['correct']) for c in cands)}/{len(cands)}",
                     "best_solution": best.get("text", "")})
    return rows


def eval_table(records_path: str | Path, problems_path: str | Path, k: int | None) -> list[dict]:
    """One row per evaluated problem: its greedy answer and, with k samples, the
    majority answer and how many of the k were right. The evaluation records carry
    ids only, so the questions come from the problem file they were drawn from."""
    questions = {p.id: p.question for p in read_problems(problems_path)}
    rows = []
    for _, rec in iter_jsonl(records_path):
        row = {"problem_id": rec["id"], "question": questions.get(rec["id"], ""), "reference": rec["reference"],
               "greedy_answer": rec["greedy_answer"], "greedy_correct": bool(rec["greedy_correct"]),
               "maj_answer": rec.get("maj_answer"), "maj_correct": rec.get("maj_correct"),
               "k_of_n_correct": None, "greedy_solution": rec["greedy"]}
        if k and "n_correct" in rec:
            row["k_of_n_correct"] = f"{rec['n_correct']}/{k}"
        rows.append(row)
    return rows


def search_samples(rows: list[dict], n: int = 3) -> dict[str, str]:
    """A few rows as one-line strings (the dataset panel shows its profile, not rows):
    problems the search solved first."""
    picked = sorted(rows, key=lambda r: not r["correct"])[:n]
    return {f"sample {i + 1}": f"{'right' if r['correct'] else 'wrong'} {r['chosen_answer']} (ref {r['reference']}, "
                               f"{r['k_of_n_correct']} correct): {r['question']}" for i, r in enumerate(picked)}


def columns(rows: list[dict], order: list[str]) -> dict[str, list]:
    """Rows as the column dict MLflow's log_table takes, in `order`."""
    return {c: [r.get(c) for r in rows] for c in order}
