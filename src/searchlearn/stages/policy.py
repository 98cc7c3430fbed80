"""Stages: materialize the base model, then SFT it on worked demonstrations."""

from __future__ import annotations

from pathlib import Path

from searchlearn.formatting import build_prompt
from searchlearn.problems.base import read_problems
from searchlearn.stages.common import produce, section, training_launch
from searchlearn.stages.stage import Stage, path_of


def base_model_stage(cfg, problems: dict) -> Stage:
    """init-base-model: `policy:` and the seed. Only the tiny model trains its tokenizer
    on the demos; other sources ignore them, so a change of problems must not
    re-convert or re-download a real model."""
    policy = section(cfg.policy)
    corpus = path_of(problems) if policy["source"] == "tiny" else None
    return Stage("init-base-model", "base-model", materialize_policy,
                 {"policy_cfg": policy, "data_dir": corpus, "seed": cfg.seed})


def sft_stage(cfg, base: dict, problems: dict) -> Stage:
    """sft-on-demos: `init:`, the seed and how training is launched."""
    return Stage("sft-on-demos", "policy-init", sft_policy,
                 {"base_dir": path_of(base), "data_dir": path_of(problems), "init_cfg": section(cfg.init),
                  "seed": cfg.seed, "launch": training_launch(cfg)})


def demo_examples(data_dir: str | Path) -> list[dict]:
    demos = read_problems(Path(data_dir) / "demos.jsonl")
    return [{"prompt": build_prompt(p.question), "completion": p.solution, "problem_id": p.id} for p in demos]


def materialize_policy(policy_cfg: dict, data_dir: str | None, seed: int, out_dir: str | Path) -> dict:
    """`data_dir`: the problems whose demos train the tiny tokenizer (None: no corpus)."""
    from searchlearn.models.init import materialize_base

    def build(tmp: Path) -> dict:
        corpus = [e["prompt"] + e["completion"] for e in demo_examples(data_dir)] if data_dir else None
        materialize_base(policy_cfg, str(tmp / "model"), corpus=corpus, seed=seed)
        return {"source": policy_cfg["source"]}

    return produce(out_dir, build)


def sft_policy(base_dir: str, data_dir: str, init_cfg: dict, seed: int, out_dir: str | Path,
               launch: dict | None = None) -> dict:
    """`launch`: accelerate launch settings (learn/launch.py); None trains in this process."""
    from searchlearn.learn.launch import run_training

    def build(tmp: Path) -> dict:
        spec = {"base_dir": str(base_dir), "data_dir": str(data_dir), "init_cfg": init_cfg, "seed": seed,
                "out_dir": str(tmp / "model")}
        return {f"sft.{k}": v for k, v in run_training(sft_job, spec, launch).items()}

    return produce(out_dir, build)


def sft_job(spec: dict) -> dict:
    """Training job: SFT the base model on the first `num_demos` demonstrations."""
    from searchlearn.learn.sft import train_sft

    examples = demo_examples(spec["data_dir"])[: spec["init_cfg"]["num_demos"]]
    return train_sft(str(Path(spec["base_dir"]) / "model"), examples, spec["init_cfg"]["train"], spec["out_dir"],
                     spec["seed"])


def model_path(policy_ref: dict) -> str:
    """The HF checkpoint inside a policy stage directory."""
    return str(Path(policy_ref["path"]) / "model")
