"""Held-out metrics on hand-made samples: greedy accuracy, maj@k (ties go to the
answer seen first), unbiased pass@k, and the best-of-N reranking curve. A scripted
generator returns exactly the samples written here, in order."""

from __future__ import annotations

import random
import weakref
from math import comb

import pytest

from search_fixtures import TableScorer
from searchlearn.evaluation import evaluate, pass_at_k, rerank_curve, sample_pools
from searchlearn.formatting import build_prompt
from searchlearn.generation.scripted import ScriptedGenerator
from searchlearn.problems.base import Problem


def answer(n: int, step: str = "x") -> str:
    return f"{step} = {n}.\nThe answer is {n}.\n"


NO_ANSWER = "I am not sure.\n"


def queued(script: dict[str, list[str]]) -> ScriptedGenerator:
    """Each question's completions, in the order the generator is asked for them."""
    queues = {build_prompt(q): iter(texts) for q, texts in script.items()}
    return ScriptedGenerator(lambda prompt, rng: next(queues[prompt]))


@pytest.mark.parametrize("n, c, k, expected", [
    (4, 1, 1, 0.25),  # one draw: c / n
    (4, 2, 2, 1 - comb(2, 2) / comb(4, 2)),  # 5/6
    (10, 3, 5, 1 - comb(7, 5) / comb(10, 5)),  # 1 - 21/252
    (5, 0, 3, 0.0),
    (3, 2, 2, 1.0),  # n - c < k: every draw of k holds a correct one
])
def test_unbiased_pass_at_k(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected)


def test_greedy_maj_at_k_with_a_tie_and_pass_at_k():
    problems = [Problem("a", "A?", "7"), Problem("b", "B?", "5"), Problem("c", "C?", "3"), Problem("d", "D?", "9")]
    gen = queued({
        # greedy first, then the k=4 samples
        "A?": [answer(7), answer(7), answer(8), answer(8), answer(7)],  # 7 vs 8 tie: 7 was seen first
        "B?": [answer(6), NO_ANSWER, answer(5), NO_ANSWER, NO_ANSWER],  # the only vote is 5
        "C?": [NO_ANSWER, answer(4), answer(4), answer(2), answer(3)],  # 4 wins; one sample right
        "D?": [answer(1)] * 5,  # never right
    })
    metrics, records = evaluate(problems, gen, k=4, temperature=0.8, max_new_tokens=32)
    assert metrics["greedy_acc"] == 1 / 4
    assert [r["maj_answer"] for r in records] == ["7", "5", "4", "1"]
    assert metrics["maj_at_4"] == 2 / 4
    assert [r["n_correct"] for r in records] == [2, 1, 1, 0]
    assert metrics["pass_at_4"] == 3 / 4  # pass@k with n = k: any correct sample
    assert metrics["pass_at_1_sampled"] == pytest.approx((2 / 4 + 1 / 4 + 1 / 4 + 0) / 4)
    assert metrics["problems"] == 4 and metrics["tokens"] == gen.stats.tokens
    assert gen.stats.calls == 2  # one greedy call, one sampled call


def test_greedy_only_when_k_is_zero():
    gen = queued({"A?": [answer(7)]})
    metrics, _ = evaluate([Problem("a", "A?", "7")], gen, k=0, temperature=0.8, max_new_tokens=32)
    assert metrics["greedy_acc"] == 1.0 and "maj_at_0" not in metrics and gen.stats.calls == 1


def test_rerank_curve_by_hand():
    problems = [Problem("p1", "P1?", "7"), Problem("p2", "P2?", "5")]
    samples = {"P1?": [answer(8), answer(7), answer(7), answer(8)],
               "P2?": [answer(5, "y"), answer(6, "y"), answer(6, "y"), answer(6, "y")]}
    # The PRM scores right steps high on both problems, so it finds the right
    # sample wherever the pool holds one; majority vote does not.
    prm = TableScorer({"x = 7.": 0.9, "The answer is 7.": 0.9, "x = 8.": 0.1, "The answer is 8.": 0.1,
                       "y = 5.": 0.9, "The answer is 5.": 0.9, "y = 6.": 0.1, "The answer is 6.": 0.1})
    gen = queued(samples)
    pools = sample_pools(problems, gen, 4, temperature=1.0, max_new_tokens=32)
    metrics, table, records, candidates = rerank_curve(problems, pools, {"prm": lambda: prm}, [1, 2, 4], seed=3)
    by_n = {row["n"]: row for row in table}
    # N=1: P1 [8] wrong, P2 [5] right.
    assert (by_n[1]["majority"], by_n[1]["prm_min"]) == (0.5, 0.5)
    # N=2: P1 [8, 7] ties, the first-seen 8 wins the vote (wrong), the PRM picks 7;
    #      P2 [5, 6] ties, 5 wins the vote (right), the PRM picks 5.
    assert (by_n[2]["majority"], by_n[2]["prm_min"], by_n[2]["prm_last"]) == (0.5, 1.0, 1.0)
    # N=4: P1 [8, 7, 7, 8] ties again (8 first: wrong); P2 [5, 6, 6, 6]: 6 wins (wrong).
    assert (by_n[4]["majority"], by_n[4]["prm_min"]) == (0.0, 1.0)
    # Random picks come from one seeded stream, N by N, problem by problem.
    rng, pools = random.Random(3), [[8, 7, 7, 8], [5, 6, 6, 6]]
    expected = {n: sum(rng.choice(pool[:n]) == int(p.answer) for p, pool in zip(problems, pools)) / 2
                for n in (1, 2, 4)}
    assert {n: by_n[n]["random"] for n in (1, 2, 4)} == expected
    assert metrics["prm_min.n2"] == 1.0 and metrics["majority.n4"] == 0.0
    # Weighted: P1 7 (0.9 + 0.9) beats 8 (0.1 + 0.1); P2 5 (0.9) beats 6 (3 x 0.1).
    assert metrics["prm_min_weighted.n4"] == 1.0
    assert metrics["tokens"] == gen.stats.tokens and gen.stats.calls == 1  # the N=4 pool serves every N
    assert prm.calls == [8]  # one batched scorer call over every candidate
    # Per-problem outcomes, for paired comparisons; each accuracy has its SE.
    assert [r["n4"]["majority"] for r in records] == [0, 0] and [r["n4"]["prm_min"] for r in records] == [1, 1]
    assert [r["n1"]["prm_min"] for r in records] == [0, 1] and metrics["prm_min.n1_se"] == pytest.approx(0.5)
    assert not any(k.endswith("step_auc_oracle") for k in metrics)  # these problems have no reference equations
    assert "position_baseline.step_auc_oracle" not in metrics
    # Within each problem the PRM puts every right answer above every wrong one (2 x 2 + 1 x 3 pairs).
    assert metrics["prm_min.candidate_auc"] == 1.0 and metrics["prm_min.candidate_auc_pairs"] == 7
    # Every candidate as the selectors saw it, with its step scores: selectors can be studied offline.
    assert [c["answer"] for c in candidates[0]["candidates"]] == ["8", "7", "7", "8"]
    assert [c["correct"] for c in candidates[1]["candidates"]] == [True, False, False, False]
    assert candidates[0]["candidates"][1]["scores"] == {"prm_min": [0.9, 0.9]}
    assert candidates[0]["reference"] == "7" and "oracle" not in candidates[0]["candidates"][0]


EGGS = ("Sam has 65 eggs. He collects 14 more eggs. He uses 31 eggs to bake a cake. "
        "How many eggs does Sam have left?")
RIGHT = "65 + 14 = 79.\n79 - 31 = 48.\nThe answer is 48.\n"
SLIP = "65 + 14 = 79.\n79 - 31 = 47.\nThe answer is 47.\n"  # wrong from step 1 on


def test_rerank_curve_measures_step_auc_against_the_oracle():
    problem = Problem("e", EGGS, "48", meta={"equations": [[65, "+", 14, 79], [79, "-", 31, 48]]})
    steps = {"65 + 14 = 79.": 0.8, "79 - 31 = 48.": 0.7, "The answer is 48.": 0.9,
             "79 - 31 = 47.": 0.75, "The answer is 47.": 0.2}
    good, bad = TableScorer(steps), TableScorer({k: 1 - v for k, v in steps.items()}, aggregations=("min",))
    pools = sample_pools([problem], queued({EGGS: [RIGHT, SLIP]}), 2, temperature=1.0, max_new_tokens=32)
    metrics, _, _, candidates = rerank_curve([problem], pools, {"good": lambda: good, "bad": lambda: bad}, [2])
    # Oracle: right [1, 1, 1], slip [1, 0, 0]. Good's scores: positives 0.8 0.7 0.9 0.8,
    # negatives 0.75 0.2 -> 7 of 8 pairs ranked right; bad's the mirror image.
    assert metrics["good_min.step_auc_oracle"] == pytest.approx(7 / 8)
    assert metrics["bad.step_auc_oracle"] == pytest.approx(1 / 8)
    # Its bootstrap resamples problems: with one problem every draw is that problem.
    assert metrics["good_min.step_auc_oracle_lo"] == metrics["good_min.step_auc_oracle_hi"] == pytest.approx(7 / 8)
    assert metrics["good_min.oracle_steps"] == 6 and metrics["good_min.oracle_positive_rate"] == pytest.approx(4 / 6)
    assert "good_last.step_auc_oracle" not in metrics  # the same model's scores: reported once
    # The two models compared on the same steps, later minus earlier, paired over problems.
    assert metrics["bad.step_auc_oracle_minus_good_min"] == pytest.approx(1 / 8 - 7 / 8)
    assert metrics["bad.step_auc_oracle_minus_good_min_lo"] == pytest.approx(-0.75)
    assert metrics["bad.step_auc_oracle_minus_good_min_hi"] == pytest.approx(-0.75)
    assert metrics["good_min.n2"] == 1.0 and metrics["good_last.n2"] == 1.0 and metrics["bad.n2"] == 0.0
    # Within the problem and step position: step 1 (0.7 right vs 0.75 wrong) is missed,
    # step 2 (0.9 vs 0.2) is not; step 0 is right in both candidates, so no pair.
    assert metrics["good_min.step_auc_oracle_matched"] == 0.5 and metrics["good_min.step_auc_oracle_matched_pairs"] == 2
    assert metrics["bad.step_auc_oracle_matched"] == 0.5
    # Position alone (0, -1, -2 for each candidate): 6 of 8 right-wrong pairs, ties half.
    assert metrics["position_baseline.step_auc_oracle"] == pytest.approx(6 / 8)
    # The candidates: the right one's min 0.7 and last 0.9 beat the slip's 0.2; bad inverts it.
    assert metrics["good_min.candidate_auc"] == metrics["good_last.candidate_auc"] == 1.0
    assert metrics["bad.candidate_auc"] == 0.0 and metrics["bad.candidate_auc_pairs"] == 1
    slip = candidates[0]["candidates"][1]
    assert slip["oracle"] == [1.0, 0.0, 0.0] and slip["scores"]["good_min"] == [0.8, 0.75, 0.2]
    assert slip["scores"]["bad"] == pytest.approx([0.2, 0.25, 0.8])


def test_rerank_curve_holds_one_reward_model_at_a_time():
    """Each model is dropped, and `release` runs, before the next one loads: two
    SmolLM2 scorers and a policy did not fit 24 GiB side by side."""
    problems = [Problem("p1", "P1?", "7")]
    pools = sample_pools(problems, queued({"P1?": [answer(8), answer(7)]}), 2, temperature=1.0, max_new_tokens=32)
    alive, events = [], []

    def loader(name, values):
        def load():
            events.append(("load", name, [ref() is not None for ref in alive]))
            scorer = TableScorer(values, aggregations=("min",))
            alive.append(weakref.ref(scorer))
            return scorer
        return load

    metrics, *_ = rerank_curve(problems, pools, {"a": loader("a", {"x = 7.": 0.9, "The answer is 7.": 0.9}),
                                                     "b": loader("b", {"x = 8.": 0.9, "The answer is 8.": 0.9})},
                                 [2], release=lambda: events.append(("release",)))
    assert events == [("load", "a", []), ("release",), ("load", "b", [False]), ("release",)]
    assert not any(ref() is not None for ref in alive)  # nothing kept either model
    assert (metrics["a.n2"], metrics["b.n2"]) == (1.0, 0.0)  # each still chose by its own scores
