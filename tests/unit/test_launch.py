"""The training launcher's pieces that need no second process: settings, command
lines, job names and config checks (the real launches are in
tests/integration/test_launch_ddp.py and test_grpo_tiny.py)."""

from __future__ import annotations

import sys

import pytest

from searchlearn.config import ConfigError, load_config
from searchlearn.learn.launch import (
    accelerate_command,
    job_name,
    launch_settings,
    resolve_job,
    run_training,
)
from searchlearn.stages.learn import learn_job
from searchlearn.stages.policy import sft_job

EXEC = {"train_processes": 1, "accelerate_config": ""}


def test_default_settings_train_in_this_process():
    assert launch_settings(EXEC) is None
    assert run_training(lambda spec: {"got": spec["x"]}, {"x": 3}, None) == {"got": 3}


def test_settings_carry_the_accelerate_config_by_content(tmp_path):
    assert launch_settings({**EXEC, "train_processes": 4}) == {"processes": 4, "config": ""}
    config = tmp_path / "fsdp.yaml"
    config.write_text("distributed_type: FSDP\n")
    first = launch_settings({**EXEC, "accelerate_config": str(config)})
    assert first["processes"] == 1 and first["config"] == str(config)
    config.write_text("distributed_type: DEEPSPEED\n")
    assert launch_settings({**EXEC, "accelerate_config": str(config)})["config_sha"] != first["config_sha"]


def test_cpu_command_starts_torchrun_processes_and_shares_the_cores():
    cmd = accelerate_command("searchlearn.stages.policy:sft_job", "/w/spec.json", "/w/result.json",
                             {"processes": 2, "config": ""}, cuda=False, cpus=8, port=29600)
    assert cmd[:3] == [sys.executable, "-m", "accelerate.commands.launch"]
    assert _flag(cmd, "--num_processes") == "2" and _flag(cmd, "--main_process_port") == "29600"
    assert "--multi_gpu" in cmd and _flag(cmd, "--num_cpu_threads_per_process") == "4"
    assert "--config_file" not in cmd
    assert cmd[-5:] == ["-m", "searchlearn.learn.launch", "searchlearn.stages.policy:sft_job", "/w/spec.json",
                        "/w/result.json"]


def test_config_file_command_lets_the_file_choose_the_distributed_type():
    cmd = accelerate_command("searchlearn.stages.learn:learn_job", "s", "r",
                             {"processes": 8, "config": "/c/zero3.yaml", "config_sha": "x"}, cuda=True, cpus=64,
                             port=1)
    assert _flag(cmd, "--config_file") == "/c/zero3.yaml" and _flag(cmd, "--num_processes") == "8"
    assert "--multi_gpu" not in cmd and "--num_cpu_threads_per_process" not in cmd
    one = accelerate_command("searchlearn.stages.learn:learn_job", "s", "r", {"processes": 1, "config": ""},
                             cuda=True, cpus=64, port=1)
    assert "--multi_gpu" not in one  # accelerate refuses --multi_gpu with one process


def test_jobs_are_named_by_module_and_only_project_jobs_resolve():
    assert job_name(sft_job) == "searchlearn.stages.policy:sft_job"
    assert resolve_job(job_name(learn_job)) is learn_job
    with pytest.raises(ValueError, match="module-level function"):
        job_name(lambda spec: spec)
    with pytest.raises(ValueError, match="not a searchlearn training job"):
        resolve_job("os:system")


def test_config_checks_the_training_launch_keys(tmp_path):
    with pytest.raises(ConfigError, match=r"execution\.train_processes must be > 0"):
        load_config("tiny", ["execution.train_processes=0"])
    with pytest.raises(ConfigError, match=r"execution\.accelerate_config: file not found: '.*nope\.yaml'"):
        load_config("tiny", [f"execution.accelerate_config={tmp_path / 'nope.yaml'}"])
    with pytest.raises(ConfigError, match="execution.train_processes"):
        load_config("tiny", ["execution.train_processes=two"])
    assert load_config("tiny", ["execution.train_processes=2"]).execution.train_processes == 2


def _flag(cmd: list[str], name: str) -> str:
    return cmd[cmd.index(name) + 1]
