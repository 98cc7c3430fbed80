"""Stage: (re)train a reward model on every round's labels so far (stages/labels.py
makes them)."""

from __future__ import annotations

import random
from pathlib import Path

from searchlearn.stages.common import produce, section, training_launch
from searchlearn.stages.labels import LABELS_FILE, OUTCOME_FILE
from searchlearn.stages.stage import Stage, path_of


def reward_config(cfg, kind: str) -> dict:
    """What training a reward model of `kind` depends on: the optimizer, the held-out
    share, the synthetic wrong steps per solution (step-label kinds only: the others
    never see them) and the kind's own section (prm.<kind>) where it has one."""
    from searchlearn.reward.labels import STEP_LABEL_KINDS

    prm = section(cfg.prm)
    negatives = {"corrupt_steps": prm["corrupt_steps"]} if kind in STEP_LABEL_KINDS else {}
    return {"train": prm["train"], "eval_fraction": prm["eval_fraction"], **negatives, kind: prm.get(kind, {})}


def reward_model_stage(cfg, init: dict, labels: list[dict], kind: str, round_index: int) -> Stage:
    """train-reward-model: a reward model of `kind` (prm | orm | verifier | implicit) on
    every round's labels so far, warm-started from `init`."""
    return Stage("train-reward-model", kind, train_reward_model,
                 {"init_dir": path_of(init, "model"), "label_dirs": [path_of(ref) for ref in labels],
                  "prm_cfg": reward_config(cfg, kind), "seed": cfg.seed, "kind": kind,
                  "launch": training_launch(cfg)},
                 round=round_index)


def split_by_problem(rows: list[dict], eval_fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """Hold out whole problems (not steps) so eval AUC measures generalisation."""
    ids = sorted({r["problem_id"] for r in rows})
    random.Random(seed).shuffle(ids)
    held = set(ids[: int(len(ids) * eval_fraction)])
    return [r for r in rows if r["problem_id"] not in held], [r for r in rows if r["problem_id"] in held]


def train_reward_model(init_dir: str, label_dirs: list[str], prm_cfg: dict, seed: int, out_dir: str | Path,
                       kind: str, launch: dict | None = None) -> dict:
    """Train a reward model of `kind` on the labels accumulated over all rounds so far,
    warm-starting from `init_dir` (last round's reward model, or the policy).
    `launch`: accelerate launch settings (learn/launch.py); None trains in this process."""
    from searchlearn.learn.launch import run_training

    def build(tmp: Path) -> dict:
        spec = {"init_dir": init_dir, "label_dirs": label_dirs, "prm_cfg": prm_cfg, "seed": seed, "kind": kind,
                "out_dir": str(tmp / "model")}
        metrics = run_training(reward_job, spec, launch)
        return {"kind": kind, **{f"{kind}.{k}": v for k, v in metrics.items() if isinstance(v, (int, float, str))}}

    return produce(out_dir, build)


def reward_job(spec: dict) -> dict:
    """Training job: a reward model of spec["kind"] on the given rounds' labels (step
    labels for a PRM, outcome labels for the other kinds), some problems held out."""
    from searchlearn.reward.corrupt import corrupt_rows
    from searchlearn.reward.labels import STEP_LABEL_KINDS, read_labelled_steps
    from searchlearn.reward.trainers import TRAINERS

    kind, prm_cfg = spec["kind"], spec["prm_cfg"]
    name = LABELS_FILE if kind in STEP_LABEL_KINDS else OUTCOME_FILE
    rows = [r for d in spec["label_dirs"] for r in read_labelled_steps(Path(d) / name)]
    if not rows:
        raise ValueError(f"no labelled solutions to train a {kind} on in {len(spec['label_dirs'])} round(s): "
                         "prm.min_solve_rate / prm.max_solve_rate kept no problem (see labels.problems_labelled); "
                         "widen them or raise prm.problems_per_round")
    train_rows, eval_rows = split_by_problem(rows, prm_cfg["eval_fraction"], spec["seed"])
    if kind in STEP_LABEL_KINDS:  # after the split: held-out rows stay as labelled
        train_rows = train_rows + corrupt_rows(train_rows, prm_cfg["corrupt_steps"], spec["seed"])
    return TRAINERS[kind](spec["init_dir"], train_rows, prm_cfg["train"], spec["out_dir"], seed=spec["seed"],
                          eval_rows=eval_rows or None, **prm_cfg.get(kind, {}))
