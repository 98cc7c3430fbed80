"""Stage: improve the policy from one round's search data with the configured learner."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from searchlearn.learn import LEARNERS, LearnInputs
from searchlearn.learn.launch import run_training
from searchlearn.stages.common import active, load_scorer_ref, produce, training_launch
from searchlearn.stages.stage import Stage, path_of, scorer_ref_of


def learn_config(cfg) -> dict:
    """`learn:` with only the chosen learner's section: tuning another learner must not retrain."""
    return active(cfg.learn, "algorithm", list(LEARNERS))


def learn_stage(cfg, start: dict, policy: dict, searched: list[dict], scorer: dict | None, round_index: int) -> Stage:
    """learn-policy: the next policy from `start`, with the round's policy as reference
    model and the search data of every round so far (`searched`, oldest first), of
    which it reads this round's, or all with learn.data=all; `scorer` shapes GRPO's
    reward (None: no shaping)."""
    earlier = searched[-2::-1] if cfg.learn.data == "all" else []
    return Stage("learn-policy", "policy", learn_round,
                 {"policy_dir": path_of(start, "model"), "reference_dir": path_of(policy, "model"),
                  "search_dir": path_of(searched[-1]), "earlier_search_dirs": [path_of(s) for s in earlier],
                  "learn_cfg": learn_config(cfg), "seed": cfg.seed,
                  "scorer_ref": scorer_ref_of(scorer, cfg.prm.step_check),
                  "launch": training_launch(cfg)}, round=round_index)


def learn_round(
    policy_dir: str, reference_dir: str, search_dir: str, learn_cfg: dict, seed: int, out_dir: str | Path,
    scorer_ref: dict | None = None, launch: dict | None = None, earlier_search_dirs: tuple[str, ...] = (),
) -> dict:
    """`scorer_ref`: the round's PRM, for GRPO reward shaping (learn.grpo.prm_weight).
    `launch`: accelerate launch settings (learn/launch.py); None trains in this process."""
    def build(tmp: Path) -> dict:
        inputs = LearnInputs(
            policy_dir=policy_dir,
            reference_dir=reference_dir,
            search_path=str(Path(search_dir) / "results.jsonl"),
            problems_path=str(Path(search_dir) / "problems.jsonl"),
            out_dir=str(tmp / "model"),
            seed=seed,
            earlier_search_paths=tuple(str(Path(d) / "results.jsonl") for d in earlier_search_dirs),
        )
        spec = {"inputs": asdict(inputs), "learn_cfg": learn_cfg, "scorer_ref": scorer_ref}
        metrics = run_training(learn_job, spec, launch)
        return {k if k.startswith("learn.") else f"learn.{k}": v for k, v in metrics.items()}

    return produce(out_dir, build)


def learn_job(spec: dict) -> dict:
    """Training job: run the configured learner on one round's data."""
    scorer = load_scorer_ref(spec["scorer_ref"])
    learner = LEARNERS[spec["learn_cfg"]["algorithm"]](**({"scorer": scorer} if scorer is not None else {}))
    return learner.learn(LearnInputs(**spec["inputs"]), spec["learn_cfg"])
