"""Math-Shepherd MC labels against a scripted generator whose per-prefix success
pattern is fixed, so every label and token count is known by hand."""

from __future__ import annotations

from collections import defaultdict

import pytest

from searchlearn.formatting import build_prompt, join_steps
from searchlearn.generation.base import SamplingParams
from searchlearn.generation.scripted import ScriptedGenerator, count_tokens
from searchlearn.problems.base import Problem
from searchlearn.reward.labels import (
    estimate_step_labels,
    label_round,
    solutions_from_results,
)
from searchlearn.search.base import Candidate, SearchResult

RIGHT = "The answer is 10.\n"
WRONG = "oops.\nThe answer is 7.\n"
# Rollout lengths differ, so token totals also check *which* completions were counted.
RIGHT_TOKENS, WRONG_TOKENS = count_tokens(RIGHT), count_tokens(WRONG)

PROBLEM = Problem(id="p1", question="Start at 4, add 2, add 4.", answer="10")
GOOD = ["4 + 2 = 6.", "6 + 4 = 10.", "The answer is 10."]
BAD = ["4 + 2 = 5.", "5 + 4 = 9.", "The answer is 9."]

# Success pattern per prefix (keyed by its last step); the generator cycles
# through it, so n=4 rollouts see each entry exactly once.
PATTERNS = {
    "4 + 2 = 6.": [True, True, False, True],  # soft 3/4
    "6 + 4 = 10.": [True, True, True, True],  # soft 1
    "4 + 2 = 5.": [True, False, False, False],  # soft 1/4, hard 1
    "5 + 4 = 9.": [False, False, False, False],  # soft 0, hard 0
}


def cycling_generator(patterns: dict[str, list[bool]] = PATTERNS) -> ScriptedGenerator:
    calls: dict[str, int] = defaultdict(int)

    def respond(prompt: str, rng) -> str:
        last = prompt.rstrip("\n").split("\n")[-1]
        pattern = patterns[last]
        ok = pattern[calls[prompt] % len(pattern)]
        calls[prompt] += 1
        return RIGHT if ok else WRONG

    return ScriptedGenerator(respond)


def expected_tokens(last_steps: list[str], rollouts: int = 4) -> int:
    return sum(RIGHT_TOKENS if ok else WRONG_TOKENS for s in last_steps for ok in PATTERNS[s][:rollouts])


def test_soft_labels_are_exact_fractions_and_one_batched_call():
    gen = cycling_generator()
    rows, stats = estimate_step_labels([PROBLEM], [[GOOD, BAD]], gen, rollouts=4, mode="soft")

    assert [r["labels"] for r in rows] == [[0.75, 1.0, 1.0], [0.25, 0.0, 0.0]]
    assert [r["source"] for r in rows] == ["mc_soft", "mc_soft"]
    assert rows[0]["steps"] == GOOD and rows[0]["problem_id"] == "p1" and rows[0]["question"] == PROBLEM.question
    assert gen.stats.calls == 1
    # Final answer steps come from the verifier: only the 2 non-final prefixes of each solution roll out.
    prompt = build_prompt(PROBLEM.question)
    assert gen.prompts_seen == [prompt + join_steps(GOOD[:1]), prompt + join_steps(GOOD[:2]),
                                prompt + join_steps(BAD[:1]), prompt + join_steps(BAD[:2])]
    assert gen.stats.completions == 16
    assert stats["prefixes"] == 4 and stats["rollouts"] == 16 and stats["final_from_verifier"] == 2
    assert stats["tokens"] == expected_tokens(list(PATTERNS)) == gen.stats.tokens == RIGHT_TOKENS * 8 + WRONG_TOKENS * 8
    assert stats["labelled_steps"] == 6
    assert stats["label_mean"] == pytest.approx((0.75 + 1 + 1 + 0.25) / 6)
    assert stats["frac_positive"] == pytest.approx(3 / 6)


def test_hard_labels_and_correct_solutions_need_no_rollouts():
    gen = cycling_generator()
    rows, stats = estimate_step_labels([PROBLEM], [[GOOD, BAD]], gen, rollouts=4, mode="hard")

    # GOOD is its own witness that each of its prefixes reaches 10: all ones, no rollouts.
    assert [r["labels"] for r in rows] == [[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]]
    assert [r["source"] for r in rows] == ["mc_hard", "mc_hard"]
    assert gen.stats.calls == 1 and len(gen.prompts_seen) == 2
    assert stats["witnessed_steps"] == 3 and stats["prefixes"] == 2
    assert stats["tokens"] == expected_tokens(["4 + 2 = 5.", "5 + 4 = 9."])


def test_no_generate_call_when_every_label_is_known():
    gen = cycling_generator()
    rows, stats = estimate_step_labels([PROBLEM], [[GOOD]], gen, rollouts=4, mode="hard")
    assert rows[0]["labels"] == [1.0, 1.0, 1.0]
    assert gen.stats.calls == 0 and stats["tokens"] == 0 and stats["rollouts"] == 0


def test_max_steps_truncates_and_rolls_out_the_kept_steps():
    gen = cycling_generator()
    rows, stats = estimate_step_labels([PROBLEM], [[GOOD, BAD]], gen, rollouts=2, mode="soft", max_steps=1)

    # Only step 1 is kept; it is not an answer step, so it is rolled out (n=2: first two pattern entries).
    assert [r["steps"] for r in rows] == [GOOD[:1], BAD[:1]]
    assert [r["labels"] for r in rows] == [[1.0], [0.5]]
    assert stats["truncated_solutions"] == 2 and stats["prefixes"] == 2 and stats["rollouts"] == 4
    assert gen.stats.completions == 4
    assert stats["tokens"] == expected_tokens(["4 + 2 = 6.", "4 + 2 = 5."], rollouts=2)


def test_rollout_sampling_settings_are_passed_through_with_n_replaced():
    seen = []

    class Recording(ScriptedGenerator):
        def generate(self, prompts, params):
            seen.append(params)
            return super().generate(prompts, params)

    gen = Recording(lambda p, rng: RIGHT)
    estimate_step_labels([PROBLEM], [[BAD]], gen, rollouts=3, mode="soft",
                         sampling=SamplingParams(n=99, temperature=0.6, max_new_tokens=40))
    assert seen == [SamplingParams(n=3, temperature=0.6, max_new_tokens=40)]


def test_solution_without_answer_line_is_fully_rolled_out():
    gen = cycling_generator()
    rows, stats = estimate_step_labels([PROBLEM], [[GOOD[:2]]], gen, rollouts=4, mode="soft")
    assert rows[0]["labels"] == [0.75, 1.0]
    assert stats["final_from_verifier"] == 0 and stats["prefixes"] == 2


def test_rejects_bad_arguments():
    gen = cycling_generator()
    with pytest.raises(ValueError, match="label mode"):
        estimate_step_labels([PROBLEM], [[GOOD]], gen, rollouts=4, mode="median")
    with pytest.raises(ValueError, match="rollouts"):
        estimate_step_labels([PROBLEM], [[GOOD]], gen, rollouts=0)
    with pytest.raises(ValueError, match="solution lists"):
        estimate_step_labels([PROBLEM], [], gen, rollouts=1)


def _result(texts_correct: list[tuple[str, bool]]) -> SearchResult:
    cands = [Candidate(text=t, num_tokens=1, correct=c) for t, c in texts_correct]
    return SearchResult(problem_id="p1", question=PROBLEM.question, reference="10", candidates=cands, best=0, tokens=1)


def test_solutions_from_results_interleave_correct_and_incorrect_then_cap():
    good2 = ["4 + 2 = 6.", "6 + 4 = 10.", "So 10.", "The answer is 10."]
    res = _result([(join_steps(GOOD), True), (join_steps(good2), True), (join_steps(GOOD), True),
                   (join_steps(BAD), False)])
    problems, sols = solutions_from_results([res], per_problem=2)
    assert problems == [Problem(id="p1", question=PROBLEM.question, answer="10")]
    assert sols == [[GOOD, BAD]]
    # Dicts (as read back from a search JSONL) work the same.
    assert solutions_from_results([res.to_dict()], per_problem=3)[1] == [[GOOD, BAD, good2]]


def test_label_round_from_results_uses_one_generate_call():
    res = _result([(join_steps(GOOD), True), (join_steps(BAD), False)])
    gen = cycling_generator()
    cfg = {"label_mode": "soft", "rollouts": 4, "solutions_per_problem": 4, "max_steps": 8,
           "temperature": 0.7, "max_new_tokens": 64}
    rows, stats = label_round(gen, cfg, [res])
    assert [r["labels"] for r in rows] == [[0.75, 1.0, 1.0], [0.25, 0.0, 0.0]]
    assert gen.stats.calls == 1 and stats["tokens"] == gen.stats.tokens


# ---- the oracle beside the labels: agreement on known answers ----------------------------

EQ_PROBLEM = Problem(id="p1", question=PROBLEM.question, answer="10",
                     meta={"equations": [[4, "+", 2, 6], [6, "+", 4, 10]]})
# A slip the rollouts forgive: the scripted "model" reaches 10 from "6 + 4 = 11." three
# times in four, so its Monte-Carlo value is high although the step is wrong.
SLIP = ["4 + 2 = 6.", "6 + 4 = 11.", "The answer is 11."]


def slip_generator() -> ScriptedGenerator:
    return cycling_generator({**PATTERNS, "6 + 4 = 11.": [True, True, True, False]})


def test_oracle_verdicts_ride_along_with_monte_carlo_labels():
    from searchlearn.reward.labels import with_oracle

    plain, _ = estimate_step_labels([PROBLEM], [[GOOD, BAD, SLIP]], slip_generator(), rollouts=4, mode="soft")
    rows = with_oracle(plain, {"p1": EQ_PROBLEM})
    assert [r["labels"] for r in rows] == [[0.75, 1.0, 1.0], [0.25, 0.0, 0.0], [0.75, 0.75, 0.0]]
    assert [r["oracle"] for r in rows] == [[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]
    # No reference equations (or an unknown problem): no oracle key at all.
    assert all("oracle" not in r for r in with_oracle(plain, {"p1": PROBLEM}) + with_oracle(plain, {}))


def test_label_agreement_with_the_oracle_by_hand():
    from searchlearn.reward.labels import with_oracle
    from searchlearn.reward.quality import label_agreement

    rows, _ = estimate_step_labels([PROBLEM], [[GOOD, BAD, SLIP]], slip_generator(), rollouts=4, mode="soft")
    got = label_agreement(with_oracle(rows, {"p1": EQ_PROBLEM}))
    # 9 steps; the only hard disagreement is the slip (0.75 vs 0). AUC: 4 right steps
    # [.75, 1, 1, .75] against 5 wrong ones [.25, 0, 0, .75, 0]: 19 of 20 pairs (one tie).
    assert got == pytest.approx({"oracle_steps": 9, "oracle_agreement": 8 / 9, "oracle_auc": 19 / 20,
                                 "oracle_mae": (0.25 + 0.25 + 0.25 + 0.75) / 9, "oracle_positive_rate": 4 / 9})
    assert label_agreement([{**r, "oracle": None} for r in rows]) == {}


def test_hard_labels_agree_less_where_one_lucky_rollout_counts():
    from searchlearn.reward.labels import with_oracle
    from searchlearn.reward.quality import label_agreement

    rows, _ = estimate_step_labels([PROBLEM], [[GOOD, BAD, SLIP]], slip_generator(), rollouts=4, mode="hard")
    rows = with_oracle(rows, {"p1": EQ_PROBLEM})
    # BAD's first step had one lucky rollout in four: hard label 1, oracle 0.
    assert [r["labels"] for r in rows] == [[1.0, 1.0, 1.0], [1.0, 0.0, 0.0], [1.0, 1.0, 0.0]]
    assert label_agreement(rows)["oracle_agreement"] == pytest.approx(7 / 9)


def test_oracle_labels_need_no_rollouts_and_skip_problems_without_equations():
    res = _result([(join_steps(GOOD), True), (join_steps(SLIP), False)])
    other = SearchResult(problem_id="p2", question="Start at 1, add 1.", reference="2", best=0, tokens=1,
                         candidates=[Candidate(text=join_steps(["1 + 1 = 2.", "The answer is 2."]), num_tokens=1,
                                               correct=True)])
    cfg = {"labels": "oracle", "solutions_per_problem": 4, "max_steps": 2}
    problems = {"p1": EQ_PROBLEM, "p2": Problem(id="p2", question=other.question, answer="2")}
    rows, stats = label_round(None, cfg, [res, other], problems)
    assert [(r["labels"], r["oracle"], r["source"]) for r in rows] == [
        ([1.0, 1.0], [1.0, 1.0], "oracle"), ([1.0, 0.0], [1.0, 0.0], "oracle")]  # cut to max_steps=2
    assert stats["no_oracle_solutions"] == 1 and stats["truncated_solutions"] == 2 and stats["tokens"] == 0
    assert [r["solve_rate"] for r in rows] == [0.5, 0.5]


def test_label_round_with_monte_carlo_labels_adds_the_oracle_and_solve_rate():
    res = _result([(join_steps(GOOD), True), (join_steps(BAD), False), (join_steps(BAD), False),
                   (join_steps(SLIP), False)])
    cfg = {"labels": "mc", "label_mode": "soft", "rollouts": 4, "solutions_per_problem": 2, "max_steps": 8,
           "temperature": 0.7, "max_new_tokens": 64}
    rows, _ = label_round(cycling_generator(), cfg, [res], {"p1": EQ_PROBLEM})
    assert [r["oracle"] for r in rows] == [[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]
    assert [r["solve_rate"] for r in rows] == [0.25, 0.25]
    with pytest.raises(ValueError, match="label source"):
        label_round(None, {**cfg, "labels": "guess"}, [res])


def test_only_problems_with_an_informative_solve_rate_are_kept():
    from searchlearn.reward.labels import informative, solve_rate

    none = _result([(join_steps(BAD), False)] * 4)
    some = _result([(join_steps(GOOD), True)] + [(join_steps(BAD), False)] * 3)
    all_ = _result([(join_steps(GOOD), True)] * 2)
    unverified = SearchResult(problem_id="p1", question="q", reference="1", best=None, tokens=0,
                              candidates=[Candidate(text="x", num_tokens=1)])
    assert [solve_rate(r) for r in (none, some, all_, unverified)] == [0.0, 0.25, 1.0, 0.0]
    assert informative([none, some, all_], 0.1, 0.9) == [some]
    assert informative([none.to_dict(), some.to_dict(), all_.to_dict()], 0.0, 1.0) == [
        none.to_dict(), some.to_dict(), all_.to_dict()]
    assert informative([none, some, all_], 0.3, 1.0) == [all_]
