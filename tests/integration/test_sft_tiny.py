"""train_sft and the RFT learner on the tiny from-scratch model, with real TRL training."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from searchlearn.artifacts import is_complete_dir, sha256_file, write_jsonl
from searchlearn.config.schema import TrainConfig
from searchlearn.learn.base import LearnInputs
from searchlearn.learn.distributed import METRICS_FILE
from searchlearn.learn.rft import RejectionSamplingFT
from searchlearn.learn.sft import train_sft
from searchlearn.search.base import Candidate, SearchResult


def fast_cfg(**overrides) -> dict:
    # A high constant LR so the tiny model visibly learns the format in a few dozen steps.
    cfg = {**asdict(TrainConfig()), "learning_rate": 3e-3, "lr_scheduler": "constant", "warmup_ratio": 0.0,
           "batch_size": 16}
    return {**cfg, **overrides}


def load_state(path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path).state_dict()


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model_dir, tiny_demos):
    out = tmp_path_factory.mktemp("sft") / "policy"
    metrics = train_sft(tiny_model_dir, tiny_demos, fast_cfg(max_steps=30), str(out), seed=0)
    return out, metrics


def test_sft_changes_parameters_and_lowers_loss(trained, tiny_model_dir):
    out, metrics = trained
    before, after = load_state(tiny_model_dir), load_state(out)
    assert before.keys() == after.keys()
    changed = [k for k in before if not (before[k] == after[k]).all()]
    assert len(changed) == len(before), f"unchanged tensors: {set(before) - set(changed)}"
    assert metrics["train.steps"] == 30 and metrics["train.examples"] == 64
    assert metrics["train.last_loss"] < 0.75 * metrics["train.first_loss"], metrics
    assert metrics["train.tokens"] > 30 * 16 * 20  # every batch is 16 real sequences of 20+ tokens


def test_sft_output_is_a_complete_loadable_checkpoint(trained):
    from transformers import AutoTokenizer

    out, metrics = trained
    assert is_complete_dir(out)
    assert json.loads((out / METRICS_FILE).read_text()) == metrics
    tok = AutoTokenizer.from_pretrained(out)
    assert tok.pad_token is not None and tok.padding_side == "left"
    # Nothing of the Trainer's working state leaks into the checkpoint or beside it.
    assert not list(out.glob("checkpoint-*")) and not (out / "training_args.bin").exists()
    assert [p.name for p in out.parent.iterdir()] == ["policy"]


def test_failed_training_leaves_no_out_dir(tmp_path, tiny_model_dir, tiny_demos, monkeypatch):
    from trl import SFTTrainer

    def boom(*args, **kwargs):
        raise RuntimeError("simulated crash mid-training")

    monkeypatch.setattr(SFTTrainer, "training_step", boom)
    out = tmp_path / "policy"
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_sft(tiny_model_dir, tiny_demos[:8], fast_cfg(max_steps=2), str(out))
    assert list(tmp_path.iterdir()) == []


def test_zero_examples_copies_the_input_checkpoint(tmp_path, tiny_model_dir):
    out = tmp_path / "policy"
    metrics = train_sft(tiny_model_dir, [], fast_cfg(max_steps=2), str(out))
    assert metrics["train.steps"] == 0 and metrics["train.examples"] == 0 and "train.first_loss" not in metrics
    assert is_complete_dir(out)
    assert sha256_file(out / "model.safetensors") == sha256_file(Path(tiny_model_dir) / "model.safetensors")
    assert json.loads((out / METRICS_FILE).read_text()) == metrics


def test_rft_learner_trains_on_verified_traces_only(tmp_path, tiny_model_dir, tiny_demos):
    results = []
    for i, demo in enumerate(tiny_demos[:6]):
        question = demo["prompt"].removeprefix("Question: ").removesuffix("\nSolution:\n")
        good = Candidate(text=demo["completion"], num_tokens=10, correct=True)
        bad = Candidate(text="The answer is 0.\n", num_tokens=5, correct=False)
        results.append(SearchResult(problem_id=f"p{i}", question=question, reference=demo["answer"],
                                    candidates=[bad, good, good] if i < 4 else [bad], best=0, tokens=15))
    search_path = write_jsonl(tmp_path / "search.jsonl", [r.to_dict() for r in results])
    inputs = LearnInputs(policy_dir=tiny_model_dir, reference_dir=tiny_model_dir, search_path=str(search_path),
                         problems_path="", out_dir=str(tmp_path / "policy"), seed=0)
    cfg = {"algorithm": "rft", "rft": {"max_per_problem": 4, "dedupe": True, "init_from": "previous",
                                       "train": fast_cfg(max_steps=2, batch_size=4)}}
    metrics = RejectionSamplingFT().learn(inputs, cfg)
    assert metrics["rft.examples"] == 4 and metrics["rft.problems_covered"] == 4
    assert metrics["train.steps"] == 2 and metrics["train.examples"] == 4
    assert is_complete_dir(inputs.out_dir)


def test_rft_with_every_rounds_data_keeps_the_newest_traces_per_problem(tmp_path, tiny_model_dir, tiny_demos):
    """learn.data=all: the learner reads earlier rounds' search data too; the per-problem
    cap takes this round's traces first."""
    def round_file(name: str, completions: dict[str, str]) -> str:
        results = [SearchResult(problem_id=pid, question=f"Question {pid}?", reference=text.split()[-1].rstrip("."),
                                candidates=[Candidate(text=text, num_tokens=5, correct=True)], best=0, tokens=5)
                   for pid, text in completions.items()]
        return str(write_jsonl(tmp_path / name, [r.to_dict() for r in results]))

    old = round_file("r1.jsonl", {"p1": "1 + 1 = 2.\nThe answer is 2.\n", "p2": "2 + 2 = 4.\nThe answer is 4.\n"})
    new = round_file("r2.jsonl", {"p1": "1 + 1 = 2.\nSo the answer is 2.\nThe answer is 2.\n"})
    inputs = LearnInputs(policy_dir=tiny_model_dir, reference_dir=tiny_model_dir, search_path=new, problems_path="",
                         out_dir=str(tmp_path / "policy"), seed=0, earlier_search_paths=(old,))
    cfg = {"algorithm": "rft", "rft": {"max_per_problem": 1, "dedupe": True,
                                       "train": fast_cfg(max_steps=1, batch_size=2)}}
    metrics = RejectionSamplingFT().learn(inputs, cfg)
    assert metrics["rft.examples"] == 2 and metrics["rft.problems_covered"] == 2
    assert inputs.search_paths() == [new, old]
