"""The labelling stages on files: the solve-rate filter, oracle labels (no generator
needed) and the oracle's verdicts on outcome rows, merged with their agreement metrics."""

from __future__ import annotations

import pytest

from searchlearn.artifacts import write_jsonl
from searchlearn.config import load_config
from searchlearn.formatting import join_steps
from searchlearn.problems.base import Problem, write_problems
from searchlearn.reward.labels import read_labelled_steps
from searchlearn.search.base import Candidate, SearchResult
from searchlearn.stages.labels import LABELS_FILE, OUTCOME_FILE, label_config, label_shard, merge_labels, trained_kinds
from searchlearn.stages.reward import reward_config

Q = "Start at 4, add 2, add 4."
EQ = {"equations": [[4, "+", 2, 6], [6, "+", 4, 10]]}
GOOD = ["4 + 2 = 6.", "6 + 4 = 10.", "The answer is 10."]
SLIP = ["4 + 2 = 6.", "6 + 4 = 11.", "The answer is 11."]
BAD = ["4 + 2 = 5.", "5 + 4 = 9.", "The answer is 9."]


def result(pid: str, solutions: list[tuple[list[str], bool]]) -> dict:
    cands = [Candidate(text=join_steps(s), num_tokens=1, correct=ok) for s, ok in solutions]
    return SearchResult(problem_id=pid, question=Q, reference="10", candidates=cands, best=0, tokens=1).to_dict()


@pytest.fixture
def search_dir(tmp_path):
    """Three searched problems: p1 solved 1 in 3 (kept), p2 never (dropped), p3 always (dropped)."""
    d = tmp_path / "search"
    write_problems(d / "problems.jsonl", [Problem(id=p, question=Q, answer="10", meta=EQ) for p in ("p1", "p2", "p3")])
    write_jsonl(d / "results.jsonl", [result("p1", [(GOOD, True), (SLIP, False), (BAD, False)]),
                                      result("p2", [(BAD, False), (SLIP, False)]),
                                      result("p3", [(GOOD, True)])])
    return d


def cfg_for(*overrides: str):
    return load_config("tiny_prm", ["prm.labels=oracle", "prm.solutions_per_problem=3", "prm.min_solve_rate=0.1",
                                    "prm.max_solve_rate=0.9", *overrides])


def test_oracle_labels_on_informative_problems_and_their_agreement(search_dir, tmp_path):
    cfg = cfg_for()
    shard = label_shard("no-policy-needed", str(search_dir), label_config(cfg), {}, 0, 1, 32, [0],
                        tmp_path / "shard")
    rows = read_labelled_steps(tmp_path / "shard" / LABELS_FILE)
    assert [(r["problem_id"], r["labels"], r["source"]) for r in rows] == [
        ("p1", [1.0, 1.0, 1.0], "oracle"), ("p1", [1.0, 0.0, 0.0], "oracle"), ("p1", [0.0, 0.0, 0.0], "oracle")]
    outcomes = read_labelled_steps(tmp_path / "shard" / OUTCOME_FILE)
    assert [(r["labels"], r["oracle"], r["solve_rate"]) for r in outcomes] == [
        ([1.0] * 3, [1.0] * 3, pytest.approx(1 / 3)), ([0.0] * 3, [1.0, 0.0, 0.0], pytest.approx(1 / 3)),
        ([0.0] * 3, [0.0] * 3, pytest.approx(1 / 3))]
    assert shard["counts"]["problems_considered"] == 3 and shard["counts"]["problems_labelled"] == 1
    merged = merge_labels([shard["path"]], tmp_path / "merged")
    assert merged["labels.rows"] == 3 and merged["labels.oracle_agreement"] == 1.0
    assert merged["labels.outcome_rows"] == 3 and merged["labels.problems_labelled"] == 1
    # Outcome labels as step labels: the slip's first step is right but labelled 0.
    assert merged["labels.outcome_oracle_agreement"] == pytest.approx(8 / 9)
    assert merged["labels.outcome_oracle_steps"] == 9


def test_solve_rate_bounds_of_zero_and_one_keep_every_problem(search_dir, tmp_path):
    cfg = cfg_for("prm.min_solve_rate=0", "prm.max_solve_rate=1")
    shard = label_shard("-", str(search_dir), label_config(cfg), {}, 0, 1, 32, [0], tmp_path / "shard")
    assert shard["counts"]["problems_labelled"] == 3
    assert {r["problem_id"] for r in read_labelled_steps(tmp_path / "shard" / OUTCOME_FILE)} == {"p1", "p2", "p3"}


def test_outcome_kinds_need_no_step_labels(search_dir, tmp_path):
    cfg = cfg_for("prm.kind=verifier", "prm.compare_kinds=[implicit,verifier]", "prm.labels=mc")
    assert trained_kinds(cfg) == ["verifier", "implicit"] and not label_config(cfg)["step_labels"]
    # No step labels wanted: no generator is started (the policy path does not exist).
    label_shard("/nonexistent", str(search_dir), label_config(cfg), {}, 0, 1, 32, [0], tmp_path / "shard")
    assert read_labelled_steps(tmp_path / "shard" / LABELS_FILE) == []
    assert len(read_labelled_steps(tmp_path / "shard" / OUTCOME_FILE)) == 3


def test_stage_slices_leave_out_what_the_stage_does_not_read():
    base = cfg_for()
    tuned = cfg_for("prm.train.learning_rate=0.5", "prm.rerank_n=[1,2]", "prm.implicit.beta=0.3")
    assert label_config(base) == label_config(tuned)  # no rollout is repeated for a training setting
    assert reward_config(base, "prm") == reward_config(cfg_for("prm.implicit.beta=0.3"), "prm")
    assert reward_config(base, "implicit") != reward_config(cfg_for("prm.implicit.beta=0.3"), "implicit")
    negatives = cfg_for("prm.corrupt_steps=2")  # read by the step-label kinds only
    assert reward_config(base, "implicit_step") != reward_config(negatives, "implicit_step")
    assert reward_config(base, "prm") != reward_config(negatives, "prm")
    assert reward_config(base, "implicit") == reward_config(negatives, "implicit")


def test_every_reward_model_kind_has_a_scorer_and_a_trainer():
    from searchlearn.reward import SCORERS
    from searchlearn.reward.labels import STEP_LABEL_KINDS
    from searchlearn.reward.trainers import TRAINERS

    assert set(SCORERS) == set(TRAINERS) == {"prm", "orm", "verifier", "implicit", "implicit_step"}
    assert set(STEP_LABEL_KINDS) <= set(SCORERS)
    assert all(SCORERS[k].kind == k for k in SCORERS)
