"""Synthetic wrong steps (reward/corrupt.py): which number is changed, that it always
changes and keeps its written form, which steps are corrupted, and that the training
job adds them to the training rows only."""

from __future__ import annotations

import random

import pytest

from searchlearn.reward.corrupt import SOURCE, corrupt_rows, corrupt_step, near_miss, target_span


@pytest.mark.parametrize("step, target", [
    ("She ends up with three times as many: 16 * 3 = 48.", "48"),
    ("Then 48 - 23 = 25 stars are left, of 48.", "25"),   # after the last '=', not the last number
    ("She has 16 * 3 = 48, then more.", "48"),            # a comma after it is punctuation
    ("The answer is 44.", "44"),                          # no '=': the last number
    ("It costs $1,250: 1,000 + 250 = 1,250.", "1,250"),
    ("Half of 7.5 is 3.75.", "3.75"),
    ("step2 of x3 is done: 2 = 2", "2"),
])
def test_the_target_is_the_number_the_step_commits_to(step, target):
    start, end = target_span(step)
    assert step[start:end] == target


def test_a_step_without_a_number_is_not_corrupted():
    assert target_span("Now add them up.") is None
    assert corrupt_step("Now add them up.", random.Random(0)) is None


@pytest.mark.parametrize("number", ["0", "3", "48", "999", "1,250", "3.75", "10"])
def test_a_near_miss_differs_and_keeps_the_written_form(number):
    rng = random.Random(1)
    for _ in range(200):
        new = near_miss(number, rng)
        assert new != number
        assert abs(len(new.replace(",", "")) - len(number.replace(",", ""))) <= 1  # 10 - 1 = 9 is a slip too
        assert [c for c in new if not c.isdigit()] == [c for c in number if not c.isdigit()]
        assert not (len(new) > 1 and new[0] == "0" and new[1].isdigit())  # no leading zero


def test_near_misses_stay_close():
    rng = random.Random(2)
    values = [int(near_miss("48", rng)) for _ in range(500)]
    assert all(0 <= v <= 98 for v in values)
    assert sum(abs(v - 48) <= 10 for v in values) > 250  # mostly small slips, as a policy makes


ROW = {"question": "Start at 4, add 2, add 4.", "steps": ["4 + 2 = 6.", "6 + 4 = 10.", "The answer is 10."],
       "labels": [1.0, 0.25, 0.0], "problem_id": "p1", "source": "mc_soft", "oracle": [1.0, 1.0, 1.0]}


def test_only_good_steps_are_corrupted_and_the_solution_is_cut_there():
    out = corrupt_rows([ROW], per_row=3, seed=0)
    assert len(out) == 1  # one step has label >= 0.5
    row = out[0]
    assert row["steps"][0] != ROW["steps"][0] and row["steps"][0].startswith("4 + 2 = ")
    assert row["labels"] == [0.0] and row["source"] == SOURCE and row["problem_id"] == "p1"
    assert "oracle" not in row  # the source row's verdicts do not describe the new step


def test_earlier_steps_keep_their_labels_and_the_count_is_capped():
    good = {**ROW, "labels": [1.0, 0.75, 0.5]}
    out = corrupt_rows([good], per_row=2, seed=3)
    assert len(out) == 2
    for row in out:
        j = len(row["steps"]) - 1
        assert row["steps"][:j] == good["steps"][:j] and row["labels"] == [*good["labels"][:j], 0.0]
        assert row["steps"][j] != good["steps"][j]
    assert len({len(r["steps"]) for r in out}) == 2  # different cut points
    assert corrupt_rows([good], per_row=2, seed=3) == out  # deterministic in the seed
    assert corrupt_rows([good], per_row=0, seed=3) == []


def test_the_training_job_adds_corrupted_rows_to_training_rows_only(tmp_path, monkeypatch):
    from searchlearn.reward import trainers
    from searchlearn.reward.labels import write_labelled_steps
    from searchlearn.stages.labels import LABELS_FILE, OUTCOME_FILE
    from searchlearn.stages.reward import reward_job

    rows = [{**ROW, "problem_id": f"p{i}", "labels": [1.0, 1.0, 1.0]} for i in range(10)]
    write_labelled_steps(tmp_path / LABELS_FILE, rows)
    write_labelled_steps(tmp_path / OUTCOME_FILE, rows)
    seen = {}

    def record(kind):
        def train(init_dir, train_rows, train_cfg, out_dir, seed=0, eval_rows=None, **kind_cfg):
            seen[kind] = (train_rows, eval_rows)
            return {}
        return train

    for kind in ("implicit_step", "implicit"):
        monkeypatch.setitem(trainers.TRAINERS, kind, record(kind))
        reward_job({"kind": kind, "init_dir": "-", "out_dir": "-", "seed": 0, "label_dirs": [str(tmp_path)],
                    "prm_cfg": {"train": {}, "eval_fraction": 0.2, "corrupt_steps": 2, kind: {}}})
    train, held = seen["implicit_step"]
    assert len(held) == 2 and all(r["source"] != SOURCE for r in held)
    assert sum(r["source"] == SOURCE for r in train) == 2 * 8
    assert {r["problem_id"] for r in train if r["source"] == SOURCE} == {r["problem_id"] for r in rows[:10]} - {
        r["problem_id"] for r in held}
    assert all(r["source"] != SOURCE for r in seen["implicit"][0])  # outcome kinds learn from outcomes only
