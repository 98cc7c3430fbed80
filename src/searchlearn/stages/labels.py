"""Stages: label the steps of this round's search data (Monte-Carlo rollouts or the
oracle) and merge the shards' labels.

Apart from stages/reward.py (training) so that an edit to the training job does not
re-key labelling, the round's costliest stage (stage keys hash whole modules:
code_closure)."""

from __future__ import annotations

from pathlib import Path

from searchlearn.problems.base import iter_jsonl
from searchlearn.sharding import block, check_covers
from searchlearn.stages.common import produce, read_stage_meta, section, stage_generator, worker_id
from searchlearn.stages.stage import Stage, path_of

LABELS_FILE = "labelled_steps.jsonl"
OUTCOME_FILE = "outcome_rows.jsonl"
ADDITIVE_STATS = ("solutions", "truncated_solutions", "final_from_verifier", "witnessed_steps", "prefixes",
                  "rollouts", "tokens", "generate_seconds", "no_oracle_solutions", "problems_considered",
                  "problems_labelled")


def labelled_count(cfg, search_data: dict) -> int:
    """How many of the round's searched problems get labelled (prm.problems_per_round, 0 = all)."""
    count = search_data["search.problems"]
    return min(count, cfg.prm.problems_per_round) if cfg.prm.problems_per_round else count


# The `prm:` settings labelling reads; training, evaluation and the kinds' own
# sections are left out, so tuning them never repeats the rollouts.
LABEL_KEYS = ("labels", "label_mode", "problems_per_round", "solutions_per_problem", "rollouts", "max_steps",
              "temperature", "top_p", "max_new_tokens", "min_solve_rate", "max_solve_rate")


def trained_kinds(cfg) -> list[str]:
    """The reward-model kinds trained every round: prm.kind, then prm.compare_kinds."""
    return list(dict.fromkeys([cfg.prm.kind, *cfg.prm.compare_kinds]))


def label_config(cfg) -> dict:
    """What labelling depends on: the label settings, and whether any trained kind
    needs per-step labels (the others learn from outcomes, which need no rollouts)."""
    from searchlearn.reward.labels import STEP_LABEL_KINDS

    prm = section(cfg.prm)
    return {**{k: prm[k] for k in LABEL_KEYS},
            "step_labels": any(kind in STEP_LABEL_KINDS for kind in trained_kinds(cfg))}


def label_shard_stage(cfg, policy: dict, search_data: dict, round_index: int, block_size: int,
                      blocks: list[int]) -> Stage:
    """label-shard: step labels (Monte-Carlo or oracle) and outcome labels for some
    blocks of the round's searched problems."""
    return Stage("label-shard", "labels-shards", label_shard,
                 {"policy_dir": path_of(policy, "model"), "search_dir": path_of(search_data),
                  "prm_cfg": label_config(cfg), "gen_cfg": section(cfg.generation), "seed": cfg.seed,
                  "round_index": round_index, "block_size": block_size, "blocks": blocks}, round=round_index)


def merge_labels_stage(shards: list[dict], round_index: int) -> Stage:
    """label-steps: the round's labelled steps, its shards' rows in problem order."""
    return Stage("label-steps", "labels", merge_labels, {"shard_dirs": [path_of(s) for s in shards]},
                 round=round_index)


def labelled_results(search_dir: str, prm_cfg: dict) -> list[dict]:
    """The searched problems considered for labelling this round, in order (blocks
    are cut from these; the solve-rate filter then applies within each block)."""
    results = [row for _, row in iter_jsonl(Path(search_dir) / "results.jsonl")]
    return results[: prm_cfg["problems_per_round"]] if prm_cfg["problems_per_round"] else results


def searched_problems(search_dir: str) -> dict:
    """The round's problems by id, with their meta (the oracle's reference equations)."""
    from searchlearn.problems.base import read_problems

    path = Path(search_dir) / "problems.jsonl"
    return {p.id: p for p in read_problems(path)} if path.is_file() else {}


def label_shard(policy_dir: str, search_dir: str, prm_cfg: dict, gen_cfg: dict, seed: int, round_index: int,
                block_size: int, blocks: list[int], out_dir: str | Path) -> dict:
    """Step labels (Monte-Carlo rollouts, or the oracle with prm.labels=oracle) when a
    trained kind needs them, and outcome labels (no rollouts) always, for the
    problems of the given blocks whose solve rate is informative; each block is
    seeded on its own (see searchlearn.sharding). Rows carry the oracle's verdicts
    where the problem has reference equations."""
    from searchlearn.reward.labels import annotate, informative, write_labelled_steps
    from searchlearn.reward.orm import outcome_rows

    def build(tmp: Path) -> dict:
        results, problems = labelled_results(search_dir, prm_cfg), searched_problems(search_dir)
        rows, outcomes, stats = [], [], []
        for b in blocks:
            considered = block(results, b, block_size)
            chosen = informative(considered, prm_cfg["min_solve_rate"], prm_cfg["max_solve_rate"])
            stats.append({"problems_considered": len(considered), "problems_labelled": len(chosen)})
            outcomes += annotate(outcome_rows(chosen, prm_cfg["solutions_per_problem"]), chosen, problems)
            if prm_cfg["step_labels"] and chosen:
                block_rows, block_stats = _step_labels(policy_dir, gen_cfg, seed, round_index, b, prm_cfg, chosen,
                                                       problems)
                rows += block_rows
                stats.append(block_stats)
        write_labelled_steps(tmp / LABELS_FILE, rows)
        write_labelled_steps(tmp / OUTCOME_FILE, outcomes)
        return {"blocks": blocks, "counts": _sum_counts(stats), "worker": worker_id()}

    return produce(out_dir, build)


def _step_labels(policy_dir: str, gen_cfg: dict, seed: int, round_index: int, block_index: int, prm_cfg: dict,
                 chosen: list[dict], problems: dict) -> tuple[list[dict], dict]:
    """One block's step labels and their statistics; the oracle needs no generator,
    so none is started."""
    from searchlearn.reward.labels import label_round

    if prm_cfg["labels"] == "oracle":
        return label_round(None, prm_cfg, chosen, problems)
    with stage_generator(policy_dir, gen_cfg, seed, "labels", round_index, block_index) as generator:
        return label_round(generator, prm_cfg, chosen, problems)


def merge_labels(shard_dirs: list[str], out_dir: str | Path) -> dict:
    """One round's labelled steps from its shards, in problem order."""
    from searchlearn.reward.labels import read_labelled_steps, summarize_labels, write_labelled_steps
    from searchlearn.reward.quality import label_agreement

    def build(tmp: Path) -> dict:
        metas = [read_stage_meta(d) for d in shard_dirs]
        check_covers([m["blocks"] for m in metas], "label")
        rows = [r for d in shard_dirs for r in read_labelled_steps(Path(d) / LABELS_FILE)]
        write_labelled_steps(tmp / LABELS_FILE, rows)
        outcomes = [r for d in shard_dirs for r in read_labelled_steps(Path(d) / OUTCOME_FILE)]
        write_labelled_steps(tmp / OUTCOME_FILE, outcomes)
        stats = {**_sum_counts([m["counts"] for m in metas]), **summarize_labels(rows), **label_agreement(rows),
                 **label_agreement(outcomes, "outcome_oracle_"), "outcome_rows": len(outcomes)}
        return {"labels.rows": len(rows), "labels.shards": len(metas),
                "labels.workers": len({m["worker"] for m in metas}),
                **{f"labels.{k}": v for k, v in stats.items() if isinstance(v, (int, float))}}

    return produce(out_dir, build)


def _sum_counts(stats: list[dict]) -> dict:
    """Add up the additive label statistics of several blocks (ratios are recomputed
    from the merged rows instead)."""
    total: dict = {"tokens": 0}
    for st in stats:
        for k, v in st.items():
            if k in ADDITIVE_STATS:
                total[k] = total.get(k, 0) + v
    return total
