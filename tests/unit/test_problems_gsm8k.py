from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from searchlearn.answers import extract_answer
from searchlearn.formatting import answer_line, split_steps
from searchlearn.problems.base import DatasetFormatError
from searchlearn.problems.gsm8k import load_hub, load_jsonl, rationale_steps
from searchlearn.problems.sources import load_splits

DATA = Path(__file__).resolve().parents[1] / "data"
GOOD_ROW = {"question": "Ann has 3 pens and buys 4 more. How many pens?", "answer": "3+4 = <<3+4=7>>7\n#### 7"}


def test_load_jsonl_converts_rationales_to_step_format():
    problems = load_jsonl(DATA / "gsm8k_train.jsonl", split="train")
    assert len(problems) == 6
    first = problems[0]
    assert first.id == "gsm8k-train-00000"
    assert first.answer == "54"
    assert first.solution == ("In the afternoon she picks 18*2 = 36 strawberries.\n"
                              "In all she picks 18+36 = 54 strawberries.\nThe answer is 54.\n")
    for p in problems:
        steps = split_steps(p.solution)
        assert "<<" not in p.solution and ">>" not in p.solution
        assert steps[-1] == answer_line(p.answer) and len(steps) == p.meta["num_steps"] + 1
        assert extract_answer(p.solution) == p.answer


def test_row_ids_commas_and_blank_rationale_lines():
    by_id = {p.id: p for p in load_jsonl(DATA / "gsm8k_train.jsonl", split="train")}
    assert by_id["custom-7"].answer == "83"  # an "id" in the row is kept
    assert by_id["gsm8k-train-00003"].answer == "1200"  # "#### 1,200"
    assert by_id["gsm8k-train-00004"].meta["num_steps"] == 2  # the blank line is not a step


def test_limit_keeps_the_first_rows_and_split_names_the_ids():
    problems = load_jsonl(DATA / "gsm8k_test.jsonl", limit=2, split="test")
    assert [p.id for p in problems] == ["gsm8k-test-00000", "gsm8k-test-00001"]
    assert [p.id for p in load_jsonl(DATA / "gsm8k_test.jsonl", limit=1)] == ["gsm8k-gsm8k_test-00000"]


def test_rationale_steps_strip_annotations_and_stray_answer_lines():
    text = "Half is 48/2 = <<48/2=24>>24.\n  \nThe answer is 24.\nSo 24+1 = <<24+1=25>>25."
    assert rationale_steps(text) == ["Half is 48/2 = 24.", "So 24+1 = 25."]


def test_malformed_fixture_names_file_and_line():
    path = DATA / "gsm8k_malformed.jsonl"
    with pytest.raises(DatasetFormatError, match=r"gsm8k_malformed\.jsonl:3: .*####"):
        load_jsonl(path)


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("bad_line, why", [
    ('{"question": "q", "answer": "1+1 = 2\\n#### 2"', "not valid JSON"),
    ('["question", "answer"]', "expected a JSON object"),
    (json.dumps({"answer": "#### 2"}), "'question'"),
    (json.dumps({"question": "q"}), "'answer'"),
    (json.dumps({"question": "q", "answer": 2}), "'answer'"),
    (json.dumps({"question": "q", "answer": "It is 2."}), "####"),
    (json.dumps({"question": "q", "answer": "It is two.\n#### two"}), "not a number"),
    (json.dumps({"question": "q", "answer": "#### " + "9" * 5000}), "not a number"),
])
def test_each_kind_of_bad_row_is_reported_with_its_line(tmp_path, bad_line, why):
    # a blank line before the bad row: line numbers are file lines, not row indices
    path = _write(tmp_path / "rows.jsonl", [json.dumps(GOOD_ROW), "", bad_line])
    with pytest.raises(DatasetFormatError) as err:
        load_jsonl(path)
    assert f"{path}:3:" in str(err.value) and why in str(err.value)


def test_whole_file_is_checked_even_with_a_limit(tmp_path):
    path = _write(tmp_path / "rows.jsonl", [json.dumps(GOOD_ROW)] * 3 + ['{"question": "q"}'])
    with pytest.raises(DatasetFormatError, match=":4:"):
        load_jsonl(path, limit=1)


def test_missing_file_and_bad_limit(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_jsonl(tmp_path / "nope.jsonl")
    with pytest.raises(ValueError):
        load_jsonl(DATA / "gsm8k_test.jsonl", limit=-1)


def test_registry_loads_jsonl_splits():
    cfg = {"source": "gsm8k_jsonl", "train_path": str(DATA / "gsm8k_train.jsonl"),
           "test_path": str(DATA / "gsm8k_test.jsonl"), "train_size": 0, "test_size": 3}
    train, test = load_splits(cfg)
    assert (len(train), len(test)) == (6, 3)
    assert not {p.question for p in train} & {p.question for p in test}


@pytest.mark.slow  # imports `datasets` (~2-3 s on 2 cores); no network is touched
def test_load_hub_reads_a_local_dataset_directory(tmp_path, monkeypatch):
    import datasets.config

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "cache"))
    repo = tmp_path / "gsm8k"
    repo.mkdir()
    shutil.copy(DATA / "gsm8k_train.jsonl", repo / "train.jsonl")
    shutil.copy(DATA / "gsm8k_test.jsonl", repo / "test.jsonl")
    # the same layout as openai/gsm8k on the hub: a "main" config with train/test files
    (repo / "README.md").write_text(
        "---\nconfigs:\n- config_name: main\n  data_files:\n  - split: train\n    path: train.jsonl\n"
        "  - split: test\n    path: test.jsonl\n---\n")
    from_hub = load_hub(str(repo), "main", "test", limit=4)
    from_file = load_jsonl(DATA / "gsm8k_test.jsonl", limit=4, split="test")
    assert from_hub == from_file
    train = load_hub(str(repo), "main", "train")
    assert [p.id for p in train][2] == "custom-7" and len(train) == 6
