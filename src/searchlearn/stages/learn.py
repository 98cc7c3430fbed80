"""Stage: improve the policy from one round's search data with the configured learner."""

from __future__ import annotations

from pathlib import Path

from searchlearn.learn import LEARNERS, LearnInputs
from searchlearn.stages.common import produce


def learn_round(
    policy_dir: str, reference_dir: str, search_dir: str, learn_cfg: dict, seed: int, out_dir: str | Path,
    scorer_ref: dict | None = None,
) -> dict:
    def build(tmp: Path) -> dict:
        inputs = LearnInputs(
            policy_dir=policy_dir,
            reference_dir=reference_dir,
            search_path=str(Path(search_dir) / "results.jsonl"),
            problems_path=str(Path(search_dir) / "problems.jsonl"),
            out_dir=str(tmp / "model"),
            seed=seed,
        )
        learner = LEARNERS[learn_cfg["algorithm"]]()
        metrics = learner.learn(inputs, learn_cfg)
        return {k if k.startswith("learn.") else f"learn.{k}": v for k, v in metrics.items()}

    return produce(out_dir, build)
