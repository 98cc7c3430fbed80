"""select_rft_examples: which search candidates become RFT training rows."""

from searchlearn.formatting import build_prompt
from searchlearn.learn.rft import select_rft_examples
from searchlearn.search.base import Candidate, SearchResult

RIGHT = "2 + 3 = 5.\nThe answer is 5.\n"
RIGHT_2 = "3 + 2 = 5.\nThe answer is 5.\n"
RIGHT_3 = "5 = 2 + 3.\nThe answer is 5.\n"
WRONG = "2 + 3 = 6.\nThe answer is 6.\n"


def cand(text: str, correct: bool | None) -> Candidate:
    return Candidate(text=text, num_tokens=len(text.split()), correct=correct)


def result(pid: str, *cands: Candidate, question: str = "What is 2 + 3?", reference: str = "5") -> SearchResult:
    return SearchResult(problem_id=pid, question=question, reference=reference,
                        candidates=list(cands), best=0, tokens=0)


def rows(pid: str, *completions: str, question: str = "What is 2 + 3?") -> list[dict]:
    return [{"prompt": build_prompt(question), "completion": c, "problem_id": pid} for c in completions]


def test_keeps_only_verified_correct_candidates():
    res = [result("p1", cand(WRONG, False), cand(RIGHT, True), cand(RIGHT_2, None))]
    assert select_rft_examples(res, max_per_problem=4) == rows("p1", RIGHT)


def test_drops_whitespace_duplicates_within_a_problem_only():
    messy = "  2 + 3   =  5.\n\nThe answer is 5.  \n"
    res = [
        result("p1", cand(RIGHT, True), cand(messy, True), cand(RIGHT_2, True)),
        result("p2", cand(RIGHT, True), question="Add 2 and 3."),
    ]
    assert select_rft_examples(res, max_per_problem=4) == (
        rows("p1", RIGHT, RIGHT_2) + rows("p2", RIGHT, question="Add 2 and 3.")
    )


def test_dedupe_off_keeps_duplicates_with_lines_stripped_and_blank_lines_dropped():
    messy = "  2 + 3   =  5.\n\nThe answer is 5.  \n"
    res = [result("p1", cand(RIGHT, True), cand(messy, True))]
    assert select_rft_examples(res, max_per_problem=4, dedupe=False) == (
        rows("p1", RIGHT, "2 + 3   =  5.\nThe answer is 5.\n")
    )


def test_cap_per_problem_counts_kept_rows_in_candidate_order():
    res = [result("p1", cand(RIGHT, True), cand(RIGHT, True), cand(WRONG, False),
                  cand(RIGHT_2, True), cand(RIGHT_3, True))]
    assert select_rft_examples(res, max_per_problem=2) == rows("p1", RIGHT, RIGHT_2)


def test_cap_holds_across_results_for_the_same_problem():
    res = [result("p1", cand(RIGHT, True)), result("p1", cand(RIGHT, True), cand(RIGHT_2, True), cand(RIGHT_3, True))]
    assert select_rft_examples(res, max_per_problem=2) == rows("p1", RIGHT, RIGHT_2)


def test_trace_is_cut_at_its_answer_line():
    rambling = RIGHT + "Question: What is 7 + 1?\nSolution:\n"
    assert select_rft_examples([result("p1", cand(rambling, True))], 4) == rows("p1", RIGHT)


def test_trace_that_only_verifies_through_a_later_answer_is_dropped():
    # extract_answer reads the last answer line, so the search marked this correct;
    # cut at its first answer line, it teaches the wrong answer.
    two_answers = WRONG + "The answer is 5.\n"
    assert select_rft_examples([result("p1", cand(two_answers, True))], 4) == []


def test_order_follows_results_then_candidates_and_is_repeatable():
    res = [
        result("b", cand(RIGHT_2, True), cand(RIGHT, True)),
        result("a", cand(RIGHT_3, True)),
    ]
    first = select_rft_examples(res, max_per_problem=4)
    assert [(r["problem_id"], r["completion"]) for r in first] == [("b", RIGHT_2), ("b", RIGHT), ("a", RIGHT_3)]
    assert select_rft_examples(res, max_per_problem=4) == first


def test_no_results_or_no_correct_candidates_give_no_rows():
    assert select_rft_examples([], max_per_problem=4) == []
    assert select_rft_examples([result("p1", cand(WRONG, False))], max_per_problem=4) == []
