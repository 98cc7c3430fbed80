"""Stage: evaluate a policy on the held-out split."""

from __future__ import annotations

from pathlib import Path

from searchlearn.artifacts import write_jsonl
from searchlearn.stages.common import produce
from searchlearn.stages.data import test_problems


def evaluate_policy(policy_dir: str, data_dir: str, eval_cfg: dict, gen_cfg: dict, seed: int,
                    out_dir: str | Path) -> dict:
    from searchlearn.evaluation import evaluate
    from searchlearn.generation import get_generator

    def build(tmp: Path) -> dict:
        problems = test_problems(data_dir, eval_cfg["num_problems"])
        generator = get_generator(policy_dir, gen_cfg, seed)
        metrics, records = evaluate(
            problems, generator, eval_cfg["k"], eval_cfg["temperature"], eval_cfg["max_new_tokens"]
        )
        write_jsonl(tmp / "records.jsonl", records)
        return {f"eval.{k}": v for k, v in metrics.items()}

    return produce(out_dir, build)
