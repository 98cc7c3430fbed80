"""DPO on the tiny from-scratch model: the chosen-over-rejected log-prob margin grows."""

import json
from pathlib import Path

import pytest
import torch

from searchlearn.artifacts import is_complete_dir, write_jsonl
from searchlearn.formatting import format_solution
from searchlearn.learn.base import LearnInputs
from searchlearn.learn.base import with_defaults
from searchlearn.learn.dpo import DPOLearner, drop_eos_unless_complete
from searchlearn.learn.pairs import build_pairs
from searchlearn.search.base import Candidate, SearchResult


def search_results() -> list[dict]:
    """Four a+b problems, each with a correct and a wrong sample and a two-step tree."""
    out = []
    for i, (a, b) in enumerate([(2, 3), (4, 1), (6, 2), (5, 5)]):
        right = format_solution([f"{a} + {b} = {a + b}"], str(a + b))
        wrong = format_solution([f"{a} - {b} = {a - b}"], str(a - b))
        tree = [
            {"id": 0, "parent": None, "step": "", "depth": 0, "value": 0.5, "visits": 2},
            {"id": 1, "parent": 0, "step": f"{a} + {b} = {a + b}", "depth": 1, "value": 0.9, "visits": 1},
            {"id": 2, "parent": 0, "step": f"{a} - {b} = {a - b}", "depth": 1, "value": 0.1, "visits": 1},
        ]
        out.append(SearchResult(
            problem_id=f"p{i}", question=f"What is {a} + {b}?", reference=str(a + b),
            candidates=[Candidate(right, 8, str(a + b), True), Candidate(wrong, 8, str(a - b), False)],
            best=0, tokens=16, tree=tree,
        ).to_dict())
    return out


def completion_logprob(model, tokenizer, prompt: str, completion: str) -> float:
    """log p(completion | prompt), summed over the completion's tokens."""
    prompt_ids = tokenizer(prompt)["input_ids"]
    full_ids = tokenizer(prompt + completion)["input_ids"]
    start = next((i for i, (x, y) in enumerate(zip(prompt_ids, full_ids)) if x != y), len(prompt_ids))
    ids = torch.tensor([full_ids])
    with torch.no_grad():
        logps = torch.log_softmax(model(ids).logits[0, :-1].float(), dim=-1)
    targets = ids[0, 1:]
    token_logps = logps.gather(1, targets[:, None])[:, 0]
    return token_logps[start - 1:].sum().item()


def mean_margin(model_dir, pairs) -> float:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    tok = AutoTokenizer.from_pretrained(model_dir)
    margins = [completion_logprob(model, tok, p["prompt"], p["chosen"])
               - completion_logprob(model, tok, p["prompt"], p["rejected"]) for p in pairs]
    return sum(margins) / len(margins)


@pytest.fixture
def tiny_dir(tiny_model_dir):
    """The session's untrained tiny model (tests/conftest.py), read-only."""
    return Path(tiny_model_dir)


def test_dpo_raises_chosen_over_rejected_margin(tiny_dir, tmp_path):
    results = search_results()
    write_jsonl(tmp_path / "search.jsonl", results)
    cfg = {"algorithm": "dpo", "dpo": {
        "pairs": "both", "min_margin": 0.2, "max_pairs_per_problem": 2, "beta": 0.1,
        "train": {"max_steps": 8, "learning_rate": 3e-3, "batch_size": 4, "warmup_ratio": 0.0,
                  "lr_scheduler": "constant"}}}
    inputs = LearnInputs(policy_dir=str(tiny_dir), reference_dir=str(tiny_dir),
                         search_path=str(tmp_path / "search.jsonl"), problems_path="", out_dir=str(tmp_path / "out"))
    pairs, _ = build_pairs(results, "both", 0.2, 2, seed=0)
    before = mean_margin(tiny_dir, pairs)

    metrics = DPOLearner().learn(inputs, cfg)

    after = mean_margin(inputs.out_dir, pairs)
    assert after > before + 0.1, (before, after)
    assert metrics["dpo.pairs_solution"] == 4 and metrics["dpo.pairs_step"] == 4 and metrics["train.steps"] == 8
    for key in ("train.first_loss", "train.last_loss", "dpo.reward_margin_last", "dpo.reward_accuracy_last",
                "train.wall_s"):
        assert key in metrics, key
    assert metrics["train.last_loss"] < metrics["train.first_loss"]
    assert is_complete_dir(inputs.out_dir)
    sidecar = json.loads((tmp_path / "out" / "train_config.json").read_text())
    assert sidecar["learner"] == "dpo" and sidecar["dpo"]["beta"] == 0.1
    assert json.loads((tmp_path / "out" / "train_metrics.json").read_text()) == metrics
    from safetensors.torch import load_file

    old, new = load_file(tiny_dir / "model.safetensors"), load_file(tmp_path / "out" / "model.safetensors")
    assert any(not torch.equal(old[k], new[k]) for k in old)


def test_dpo_without_pairs_copies_the_policy(tiny_dir, tmp_path):
    all_correct = search_results()[:1]
    all_correct[0]["candidates"] = all_correct[0]["candidates"][:1]
    all_correct[0]["tree"] = None
    write_jsonl(tmp_path / "search.jsonl", all_correct)
    inputs = LearnInputs(policy_dir=str(tiny_dir), reference_dir=str(tiny_dir),
                         search_path=str(tmp_path / "search.jsonl"), problems_path="", out_dir=str(tmp_path / "out"))
    metrics = DPOLearner().learn(inputs, {"algorithm": "dpo"})
    assert metrics["dpo.pairs"] == 0 and metrics["train.steps"] == 0
    assert metrics["dpo.problems_without_solution_pairs"] == 1
    assert is_complete_dir(inputs.out_dir)
    assert (tmp_path / "out" / "model.safetensors").read_bytes() == (tiny_dir / "model.safetensors").read_bytes()


def test_eos_is_kept_only_after_a_final_answer_line():
    eos = 2
    example = {"chosen": "3 + 4 = 7\n<|eos|>", "chosen_ids": [10, 11, eos],
               "rejected": "The answer is 8.\n<|eos|>", "rejected_ids": [12, 13, eos]}
    out = drop_eos_unless_complete(dict(example), eos)
    assert out["chosen_ids"] == [10, 11] and out["rejected_ids"] == [12, 13, eos]


def test_learner_config_merges_nested_defaults_and_rejects_typos():
    defaults = {"beta": 0.1, "train": {"batch_size": 8, "max_steps": -1}}
    merged = with_defaults({"train": {"max_steps": 3}}, defaults)
    assert merged == {"beta": 0.1, "train": {"batch_size": 8, "max_steps": 3}}
    with pytest.raises(ValueError, match="unknown learner config keys"):
        with_defaults({"betta": 0.2}, defaults)
    with pytest.raises(ValueError, match="unknown learner config keys"):
        with_defaults({"train": {"lr": 1.0}}, defaults)
