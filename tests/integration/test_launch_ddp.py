"""Training stages under `accelerate launch` with 2 real processes (DDP over gloo on
this CPU machine), against the same stage trained in this process.

Two processes with batch 4 see exactly the batches one process with batch 8 sees
(accelerate hands out whole per-process batches in turn), and DDP averages the
gradients, so the two runs must train the same model up to float rounding.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest

from searchlearn.artifacts import is_complete_dir
from searchlearn.config.schema import TrainConfig
from searchlearn.learn.distributed import TRAINING_ARGS_FILE
from searchlearn.learn.launch import LaunchError
from searchlearn.problems.base import Problem, write_problems
from searchlearn.stages.policy import sft_policy

pytestmark = pytest.mark.slow

DDP = {"processes": 2, "config": ""}
STEPS = 6


def sft_cfg(batch_size: int) -> dict:
    train = {**asdict(TrainConfig()), "learning_rate": 3e-3, "lr_scheduler": "constant", "warmup_ratio": 0.0,
             "batch_size": batch_size, "max_steps": STEPS,
             # fp32: bf16 rounds the two runs' differently padded batches differently,
             # and Adam magnifies that on near-zero gradients.
             "precision": "fp32"}
    return {"num_demos": 64, "train": train}


@pytest.fixture(scope="module")
def stage_inputs(tmp_path_factory, tiny_model_dir, tiny_demos):
    """(base stage dir holding model/, data dir holding demos.jsonl) as the flow lays them out."""
    root = tmp_path_factory.mktemp("ddp")
    (root / "base").mkdir()
    (root / "base" / "model").symlink_to(tiny_model_dir)
    problems = [Problem(id=f"d{i}", question=d["prompt"].removeprefix("Question: ").removesuffix("\nSolution:\n"),
                        answer=d["answer"], solution=d["completion"]) for i, d in enumerate(tiny_demos)]
    write_problems(root / "demos.jsonl", problems)
    return str(root / "base"), str(root)


@pytest.fixture(scope="module")
def single_and_ddp(tmp_path_factory, stage_inputs):
    base, data = stage_inputs
    out = tmp_path_factory.mktemp("runs")
    single = sft_policy(base, data, sft_cfg(batch_size=8), 0, out / "single")
    ddp = sft_policy(base, data, sft_cfg(batch_size=4), 0, out / "ddp", launch=DDP)
    return single, ddp


def load_state(model_dir: str | Path) -> dict:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(model_dir).state_dict()


def test_two_processes_train_what_one_process_trains_with_their_joint_batch(single_and_ddp, tiny_model_dir):
    single, ddp = single_and_ddp
    assert single["sft.train.processes"] == 1 and ddp["sft.train.processes"] == 2
    assert single["sft.train.steps"] == ddp["sft.train.steps"] == STEPS
    # Tokens are summed over processes: the same examples were seen, none twice.
    assert single["sft.train.tokens"] == ddp["sft.train.tokens"] > 0
    assert ddp["sft.train.first_loss"] == pytest.approx(single["sft.train.first_loss"], rel=1e-4)
    assert ddp["sft.train.last_loss"] == pytest.approx(single["sft.train.last_loss"], rel=1e-3)
    assert ddp["sft.train.last_loss"] < ddp["sft.train.first_loss"]
    a, b = load_state(Path(single["path"]) / "model"), load_state(Path(ddp["path"]) / "model")
    base = load_state(tiny_model_dir)
    moved = max((a[k] - base[k]).abs().max().item() for k in a)
    apart = max((a[k] - b[k]).abs().max().item() for k in a)
    assert moved > 1e-2, "training must move the weights for the comparison to mean anything"
    assert apart < moved / 100, (apart, moved)


def test_only_the_main_process_writes_one_complete_checkpoint(single_and_ddp):
    _, ddp = single_and_ddp
    out = Path(ddp["path"])
    assert is_complete_dir(out) and is_complete_dir(out / "model")
    assert sorted(p.name for p in out.parent.iterdir()) == ["ddp", "single"]  # no temp dirs left by any rank
    assert not (out / "model" / TRAINING_ARGS_FILE).exists()
    assert (out / "model" / "train_metrics.json").is_file() and (out / "model" / "tokenizer.json").is_file()


def test_a_failing_launch_raises_with_the_child_traceback_and_writes_nothing(tmp_path, stage_inputs):
    _, data = stage_inputs
    (tmp_path / "nobase").mkdir()  # no model/ inside: every rank fails while loading
    out = tmp_path / "out"
    with pytest.raises(LaunchError, match=r"(?s)2 process\(es\).*exit code [1-9].*rank\d+:.*nobase"):
        sft_policy(str(tmp_path / "nobase"), data, sft_cfg(batch_size=4), 0, out, launch=DDP)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nobase"]
