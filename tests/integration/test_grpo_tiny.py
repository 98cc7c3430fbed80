"""GRPO on the tiny from-scratch model, plus its reward functions on hand-made text."""

import json
import shutil
from pathlib import Path

import pytest
import torch

from searchlearn.artifacts import is_complete_dir
from searchlearn.formatting import build_prompt, format_solution
from searchlearn.learn.base import LearnInputs
from searchlearn.learn.grpo import (
    GRPOLearner,
    PRMReward,
    check_batch,
    correctness_reward,
    format_reward,
    format_score,
    grpo_defaults,
    reward_functions,
)
from searchlearn.problems.base import Problem, write_problems

class PlusScorer:
    """A scripted StepScorer: a step scores 1.0 if it adds, else 0.0."""

    def score(self, questions, step_lists):
        return [[1.0 if "+" in s else 0.0 for s in steps] for steps in step_lists]


# --- reward functions on hand-made text ---------------------------------------------------


def test_format_score_levels():
    assert format_score("2 + 3 = 5\nThe answer is 5.\n") == 1.0
    assert format_score("The answer is 5.") == 1.0
    assert format_score("2 + 3 = 5\nThe answer is 5.\nand more") == 0.5  # rambles on
    assert format_score("The answer is five.\n") == 0.5  # answer does not parse
    assert format_score("2 + 3 = 5\n") == 0.0
    assert format_score("") == 0.0
    assert format_score("I think The answer is 5.\nThe answer is 5.\n") == 1.0  # only a line start counts


def test_correctness_reward_judges_up_to_the_first_answer_line():
    completions = ["2 + 3 = 5\nThe answer is 5.\n", "The answer is 6.\n", "The answer is 6.\nThe answer is 5.\n"]
    assert correctness_reward(completions, answer=["5", "5", "5"], trainer_state=None) == [1.0, 0.0, 0.0]
    assert format_reward(completions) == [1.0, 1.0, 0.5]


def test_reward_functions_skip_zero_weights_and_missing_scorer():
    cfg = {**grpo_defaults(), "format_weight": 0.0, "prm_weight": 0.5}
    funcs, weights = reward_functions(cfg, scorer=None)
    assert funcs == [correctness_reward] and weights == [1.0]
    funcs, weights = reward_functions({**cfg, "format_weight": 0.2}, scorer=PlusScorer())
    assert [getattr(f, "__name__") for f in funcs] == ["correctness_reward", "format_reward", "prm_reward"]
    assert weights == [1.0, 0.2, 0.5]
    prm = funcs[2]
    assert prm(["2 + 3 = 5\nThe answer is 5.\n", "2 - 3 = -1\n"], question=["q", "q"]) == [0.0, 0.0]
    assert PRMReward(PlusScorer(), "last")(["The answer is 5.\n2 + 3\n"], question=["q"]) == [0.0]
    assert PRMReward(PlusScorer(), "mean")(["2 + 3 = 5\nThe answer is 5.\n"], question=["q"]) == [0.5]


def test_check_batch_needs_whole_groups():
    cfg = grpo_defaults()
    check_batch(cfg)
    with pytest.raises(ValueError, match="multiple of num_generations"):
        check_batch({**cfg, "num_generations": 3})
    with pytest.raises(ValueError, match=">= 2"):
        check_batch({**cfg, "num_generations": 1})


# --- a few real GRPO steps ----------------------------------------------------------------


def addition_problems():
    pairs = [(2, 3), (4, 1), (6, 2), (5, 5), (3, 3), (7, 1), (1, 8), (2, 2)]
    return [Problem(id=f"p{i}", question=f"What is {a} + {b}?", answer=str(a + b),
                    solution=format_solution([f"{a} + {b} = {a + b}"], str(a + b)))
            for i, (a, b) in enumerate(pairs)]


def warm_up_on_demos(model_dir, problems, steps=30):
    """A few full-sequence LM steps so the random tiny model writes answer lines
    (sometimes right, sometimes wrong), which gives GRPO groups non-zero advantages."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    texts = [build_prompt(p.question) + p.solution + tok.eos_token for p in problems]
    batch = tok(texts, return_tensors="pt", padding=True, padding_side="right")
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    optim = torch.optim.AdamW(model.parameters(), lr=1e-2)
    torch.manual_seed(0)
    for _ in range(steps):
        loss = model(**batch, labels=labels).loss
        loss.backward()
        optim.step()
        optim.zero_grad()
    model.save_pretrained(model_dir)


@pytest.fixture(scope="module")
def warm_tiny_dir(tiny_model_dir, tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("grpo") / "policy"
    shutil.copytree(tiny_model_dir, model_dir)  # the session's tiny model is read-only
    warm_up_on_demos(model_dir, addition_problems())
    return model_dir


def test_grpo_updates_parameters_and_logs_rewards(warm_tiny_dir, tmp_path):
    write_problems(tmp_path / "problems.jsonl", addition_problems())
    cfg = {"algorithm": "grpo", "grpo": {
        "num_generations": 4, "max_completion_length": 16, "temperature": 1.0, "beta": 0.04, "prm_weight": 0.5,
        "train": {"max_steps": 3, "batch_size": 8, "learning_rate": 1e-3, "warmup_ratio": 0.0,
                  "lr_scheduler": "constant"}}}
    inputs = LearnInputs(policy_dir=str(warm_tiny_dir), reference_dir=str(warm_tiny_dir), search_path="",
                         problems_path=str(tmp_path / "problems.jsonl"), out_dir=str(tmp_path / "out"))

    metrics = GRPOLearner(scorer=PlusScorer()).learn(inputs, cfg)

    assert metrics["train.steps"] == 3 and metrics["grpo.prm_used"] == 1 and metrics["grpo.reward_functions"] == 3
    for key in ("grpo.reward_first", "grpo.reward_last", "grpo.reward_std_mean", "grpo.correctness_reward_last",
                "grpo.format_reward_last", "grpo.prm_reward_last", "grpo.kl_last", "grpo.completion_length_mean",
                "train.first_loss", "train.wall_s"):
        assert key in metrics, key
    assert metrics["grpo.frac_reward_zero_std_mean"] < 1.0  # some groups had a learning signal
    assert is_complete_dir(inputs.out_dir)
    assert json.loads((tmp_path / "out" / "train_config.json").read_text())["learner"] == "grpo"
    from safetensors.torch import load_file

    old, new = load_file(Path(warm_tiny_dir) / "model.safetensors"), load_file(tmp_path / "out" / "model.safetensors")
    assert any(not torch.equal(old[k], new[k]) for k in old)


def test_grpo_without_problems_copies_the_policy(tiny_model_dir, tmp_path):
    write_problems(tmp_path / "problems.jsonl", [])
    inputs = LearnInputs(policy_dir=tiny_model_dir, reference_dir=tiny_model_dir, search_path="",
                         problems_path=str(tmp_path / "problems.jsonl"), out_dir=str(tmp_path / "out"))
    metrics = GRPOLearner().learn(inputs, {"algorithm": "grpo"})
    assert metrics["grpo.problems"] == 0 and metrics["train.steps"] == 0 and metrics["grpo.prm_used"] == 0
    assert is_complete_dir(inputs.out_dir)
    weights = "model.safetensors"
    assert (tmp_path / "out" / weights).read_bytes() == (Path(tiny_model_dir) / weights).read_bytes()


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.device_count() == 1, reason="two processes need two GPUs, or none (gloo on CPU)")
def test_grpo_stage_under_accelerate_launch_trains_in_two_processes(warm_tiny_dir, tmp_path):
    """The learn stage's GRPO job in 2 data-parallel processes (gloo on CPU): TRL
    splits each generation batch over them and gathers rewards across both."""
    from searchlearn.stages.learn import learn_round

    write_problems(tmp_path / "problems.jsonl", addition_problems())
    cfg = {"algorithm": "grpo", "grpo": {
        "num_generations": 4, "max_completion_length": 16, "temperature": 1.0,
        "train": {"max_steps": 2, "batch_size": 4, "learning_rate": 1e-3, "warmup_ratio": 0.0,
                  "lr_scheduler": "constant"}}}
    ref = learn_round(str(warm_tiny_dir), str(warm_tiny_dir), str(tmp_path), cfg, 0, tmp_path / "stage",
                      launch={"processes": 2, "config": ""})
    assert ref["learn.train.processes"] == 2 and ref["learn.train.steps"] == 2
    assert "learn.grpo.reward_last" in ref and ref["learn.grpo.completion_length_mean"] > 0
    # 2 steps x (batch 4 x 2 processes) completions of the logged mean length.
    assert ref["learn.grpo.generated_tokens_est"] == round(ref["learn.grpo.completion_length_mean"] * 2 * 8)
    assert is_complete_dir(tmp_path / "stage" / "model")
    assert json.loads((tmp_path / "stage" / "model" / "train_config.json").read_text())["learner"] == "grpo"
