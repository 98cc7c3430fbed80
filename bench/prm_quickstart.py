"""Benchmark: the reward-design pillar at quickstart scale, on a finished quickstart run.

Takes the policies and search data of a finished quickstart run (`make run`, or
bench/arms.py's loop arm) and runs the recipe's own reward stages on them (no Prefect,
no MLflow; stage outputs cached in that run's directory, so a rerun reuses them):

1. label-steps for every round r: Monte-Carlo step labels with the policy that searched
   in round r (round 1: the SFT'd init), on round r's searched problems whose solve
   rate is informative (prm.min/max_solve_rate). Every labelled step carries the exact
   oracle's verdict: the labels' agreement with the oracle, per round (soft and hard).
2. train-reward-model for each --kinds on all three rounds' labels, from the round-3
   policy (the flow warm-starts round by round from the previous round's model; this
   trains once, on the same labels).
3. evaluate-reranking with the round-3 policy on the held-out problems: best-of-N at
   N in --rerank-n from one pool of samples per problem, selected by majority vote, at
   random, and by each reward model (best-scored, and weighted: the answer with the
   largest summed score); and each model's step AUC against the oracle over every step
   of every held-out candidate.

Writes bench/results/prm.json (issue 12's keys: step_auc_oracle, bon16_weighted,
bon16_majority, mc_label_agreement) with 95 % intervals: normal for accuracies
(problems are independent) and a paired bootstrap over problems for differences between
selectors. Step AUCs carry their step count and a 95 % bootstrap interval over problems
(`step_auc_oracle_ci95`); where several models rerank in one process, each pair's AUC
difference on the same steps carries a paired one (`step_auc_oracle_differences`).

    O="prm.train.epochs=6 prm.train.learning_rate=1e-4 prm.train.warmup_ratio=0.1"
    for kind in prm verifier implicit; do   # one process per training (see --train-only)
      .venv/bin/python bench/prm_quickstart.py --loop-dir runs/bench-arms/loop --train-only $kind --override $O
    done
    .venv/bin/python bench/prm_quickstart.py --loop-dir runs/bench-arms/loop --rerank-kinds prm --override $O
    .venv/bin/python bench/prm_quickstart.py --loop-dir runs/bench-arms/loop --rerank-kinds implicit \
        --out bench/results/prm_implicit.json --override $O

`--dense PROBLEMS N` adds one more label set: best-of-N with the last policy on PROBLEMS
fresh pool problems (the flow's own search stage, as round rounds+1), every distinct
sample of a problem with both right and wrong answers labelled:

    O="prm.train.epochs=2 prm.train.learning_rate=1e-4 prm.train.warmup_ratio=0.1 prm.min_solve_rate=0 \
       prm.max_solve_rate=1 prm.labels=oracle prm.implicit_step.pairwise_weight=1.0"
    .venv/bin/python bench/prm_quickstart.py --loop-dir runs/bench-arms/loop --kinds implicit_step \
        --train-only implicit_step --dense 320 16 --override $O

`--models KIND=DIR ...` reranks already trained reward models, named by their stage
directory, without labelling or training (a code change re-keys the label stages, and
a model trained here is not the flow's, which `latest` reads):

    .venv/bin/python bench/prm_quickstart.py --loop-dir runs/bench-arms/loop --rerank-n 1 2 4 8 16 32 \
        --models prm=runs/bench-arms/loop/artifacts/prm-r3/cf0244a4fe00f74b --out bench/results/prm_bon32.json

`--test-seed S` reranks on a fresh held-out set (the generator's test split at seed S,
less the run's own test questions) instead of the 200 test problems every variant was
chosen on: a confirmation of figures picked as the best of several.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))  # label_noise


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--loop-dir", default="runs/bench-arms/loop", help="run_dir of a finished quickstart run")
    p.add_argument("--experiment", default="quickstart")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--kinds", nargs="+", default=["prm", "verifier", "implicit"])
    p.add_argument("--rollouts", type=int, default=4)
    p.add_argument("--solutions-per-problem", type=int, default=4)
    p.add_argument("--rerank-n", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    p.add_argument("--rerank-problems", type=int, default=200)
    p.add_argument("--override", nargs="*", default=[], help="more config overrides, e.g. prm.train.epochs=2")
    p.add_argument("--rerank-kinds", nargs="+", metavar="KIND",
                   help="rerank with only these of --kinds (default all; one rerank with three models in one "
                        "process ran out of 24 GiB here)")
    p.add_argument("--bootstrap", type=int, default=2000)
    p.add_argument("--train-only", nargs="+", metavar="KIND",
                   help="only train these of --kinds, then stop (one process per kind: trainings left in one "
                        "process grew it past 24 GiB here; a later full run takes them from the cache)")
    p.add_argument("--models", nargs="+", metavar="KIND=DIR",
                   help="rerank these trained reward models (stage directories); no labelling or training")
    p.add_argument("--dense", type=int, nargs=2, metavar=("PROBLEMS", "N"),
                   help="also train on PROBLEMS fresh training-pool problems, N samples each from the last policy "
                        "(the flow's search stage as round rounds+1), only those with both right and wrong answers "
                        "labelled, every distinct sample of each: many more within-problem contrasts than the rounds' "
                        "own 4 (the problems are drawn from the whole pool, so some may repeat a round's)")
    p.add_argument("--test-seed", type=int, metavar="S",
                   help="rerank on a fresh held-out set instead of the run's test split: the arithmetic "
                        "generator's test split at seed S (never in any seed's training pool: the split is fixed by "
                        "the question text), less any question of the run's own test set. A confirmation set: "
                        "variants chosen on the run's test problems are re-measured on problems that chose nothing")
    p.add_argument("--out", help="where the report goes (default bench/results/prm.json); with --train-only "
                                 "only where given: the labels' agreement and the training metrics, no rerank")
    return p.parse_args(argv)


def fresh_test_set(cfg, run_dir: Path, problems: dict, seed: int, count: int) -> tuple[dict, dict]:
    """--test-seed: `count` held-out problems of the arithmetic generator at `seed` that
    the run's own test split does not hold (ids arith-s{seed}-NNNNN, so records never
    mix with the run's), as a prepare-eval-problems stage output, and what was dropped."""
    from dataclasses import replace

    from searchlearn.problems.base import read_problems, write_problems
    from searchlearn.problems.sources import load_splits
    from searchlearn.stages.common import section
    from searchlearn.stages.data import eval_file_stage

    spec = section(cfg.problems)
    if spec["source"] != "arithmetic":
        raise SystemExit(f"--test-seed needs problems.source=arithmetic, the run has {spec['source']}")
    if count < 1:
        raise SystemExit("--test-seed draws --rerank-problems problems: give a count of at least 1")
    used = {p.question for p in read_problems(Path(problems["path"]) / "test.jsonl")}
    _, test = load_splits({**spec, "seed": seed, "train_size": 0, "test_size": count + len(used)})
    kept, dropped = [], 0
    for p in test:
        if len(kept) == count:
            break
        if p.question in used:
            dropped += 1
        else:
            kept.append(replace(p, id=f"arith-s{seed}-{len(kept):05d}"))
    path = run_dir / f"test-seed{seed}.jsonl"
    write_problems(path, kept)
    return eval_file_stage(str(path), fmt="problems").run(str(run_dir)), {"seed": seed, "problems": len(kept),
                                                                            "dropped_as_in_run_test": dropped}


def log(*parts) -> None:
    print(time.strftime("%H:%M:%S"), *parts, file=sys.stderr, flush=True)


def completed(run_dir: Path, stage: str) -> list[Path]:
    """A stage's completed outputs under run_dir, oldest first."""
    from searchlearn.artifacts import is_complete_dir

    return sorted((p for p in (run_dir / "artifacts" / stage).glob("*") if is_complete_dir(p)),
                  key=lambda p: p.stat().st_mtime)


def latest(run_dir: Path, stage: str) -> dict:
    """The flow's output of a stage, as stages pass it (path, sha, metrics): the one
    its newest finished round run recorded (`recorded`), else the newest completed
    output. Why not always the newest: the benchmarks write outputs of the same stages
    into the run dir (a reward model trained another way, a rerank of it), and those
    must not stand in for the flow's in a later benchmark."""
    found = recorded(run_dir, stage)
    if found is not None:
        return ref(found)
    outs = completed(run_dir, stage)
    if not outs:
        raise SystemExit(f"no completed {stage} under {run_dir}/artifacts: run quickstart there first")
    return ref(outs[-1])


def recorded(run_dir: Path, stage: str) -> Path | None:
    """The output of `stage` (`<name>-r<k>`, `policy-init`) that the newest finished
    round run in the run dir's own MLflow store recorded (tracking.log_round's
    `ref.<name>` tag), if it is still there and complete; None when the run dir has no
    store (another tracking.uri) or no round run recorded the stage (e.g. `problems`)."""
    import re

    from searchlearn.artifacts import is_complete_dir

    store = run_dir / "mlflow.db"
    match = re.fullmatch(r"(.+)-r(\d+)", stage)
    if not store.is_file() or not (match or stage == "policy-init"):
        return None
    name, round_index = match.groups() if match else ("policy", "0")
    tag = f"ref.{name.replace('eval-', 'eval.', 1)}"  # eval-<set>-r<k> is recorded as ref.eval.<set>
    from searchlearn.tracking import mlflow_client

    client = mlflow_client(f"sqlite:///{store}")
    experiments = [e.experiment_id for e in client.search_experiments()]
    for run in client.search_runs(experiments, order_by=["attributes.start_time DESC"],
                                  filter_string=f"tags.`searchlearn.round` = '{round_index}' "
                                                "and attributes.status = 'FINISHED'"):
        path = run.data.tags.get(tag)
        if path and is_complete_dir(Path(path)):
            return Path(path)
    return None


def ref(out: Path) -> dict:
    """A completed stage output, as stages pass it (path, sha, metrics)."""
    from searchlearn.artifacts import artifact_ref, is_complete_dir
    from searchlearn.stages.common import read_stage_meta

    if not is_complete_dir(out):
        raise SystemExit(f"{out}: not a completed stage output")
    return artifact_ref(out, **read_stage_meta(out))


def named_models(specs: list[str]) -> dict:
    """--models KIND=DIR ... as {kind: stage output}."""
    if any("=" not in s for s in specs):
        raise SystemExit(f"--models takes KIND=DIR, got {specs}")
    return {kind: ref(Path(d).resolve()) for kind, d in (s.split("=", 1) for s in specs)}


def config(args, run_dir: Path, *extra: str):
    from searchlearn.config import load_config

    kind, *others = args.kinds
    return load_config(args.experiment, [
        f"run_dir={run_dir}", "prm.enabled=true", "prm.problems_per_round=0", f"prm.kind={kind}",
        f"prm.compare_kinds=[{','.join(others)}]", f"prm.rollouts={args.rollouts}",
        f"prm.solutions_per_problem={args.solutions_per_problem}",
        f"prm.rerank_n=[{','.join(map(str, args.rerank_n))}]", f"prm.rerank_problems={args.rerank_problems}",
        *args.override, *extra])


def label(cfg, policy: dict, searched: dict, r: int, run_dir: str) -> dict:
    """The flow's label stages for round r (shards, then merge), run in this process
    (tasks/fanout.py's label_steps with one shard); bench/label_noise.py calls it too."""
    from searchlearn.sharding import plan_shards
    from searchlearn.stages.labels import label_shard_stage, labelled_count, merge_labels_stage

    block = cfg.execution.block_size
    shards = [label_shard_stage(cfg, policy, searched, r, block, blocks).run(run_dir)
              for blocks in plan_shards(labelled_count(cfg, searched), block, 1)]
    return merge_labels_stage(shards, r).run(run_dir)


def hard_agreement(labels_dir: str) -> dict:
    """The hard Monte-Carlo labels of the same rollouts (label_noise.hard) against the oracle."""
    from label_noise import hard

    from searchlearn.reward.labels import read_labelled_steps
    from searchlearn.reward.quality import label_agreement
    from searchlearn.stages.labels import LABELS_FILE

    return label_agreement(hard(read_labelled_steps(Path(labels_dir) / LABELS_FILE)), "")


def interval(p: float, n: int) -> list[float]:
    half = 1.96 * (p * (1 - p) / n) ** 0.5 if n else 0.0
    return [round(p - half, 4), round(p + half, 4)]


def paired_bootstrap(records: list[dict], n: int, a: str, b: str, draws: int, seed: int = 0) -> dict:
    """Mean of (a - b) over problems at best-of-n, and its 95 % bootstrap interval."""
    return bootstrap_diff([r[f"n{n}"][a] - r[f"n{n}"][b] for r in records], draws, seed)


def bootstrap_diff(diffs: list[float], draws: int = 2000, seed: int = 0) -> dict:
    """Mean of per-problem differences and its 95 % bootstrap interval over problems."""
    rng, means = random.Random(seed), []
    for _ in range(draws):
        means.append(sum(rng.choice(diffs) for _ in diffs) / len(diffs))
    means.sort()
    return {"diff": round(sum(diffs) / len(diffs), 4),
            "ci95": [round(means[int(0.025 * draws)], 4), round(means[int(0.975 * draws) - 1], 4)]}


def main(argv=None) -> int:
    from searchlearn.learn.scaffold import configure_cpu
    from searchlearn.stages.evaluate import rerank_stage

    args = parse_args(argv)
    configure_cpu()
    run_dir = Path(args.loop_dir).resolve()
    cfg = config(args, run_dir)
    start = time.perf_counter()
    problems = held_out = latest(run_dir, "problems")
    policies = [latest(run_dir, "policy-init")] + [latest(run_dir, f"policy-r{r}") for r in range(1, args.rounds + 1)]
    report: dict = {"experiment": args.experiment, "loop_dir": str(run_dir), "kinds": args.kinds,
                    "prm": {k: v for k, v in json.loads(json.dumps(dict(cfg.prm), default=str)).items()
                            if k not in ("implicit", "implicit_step", "train")},
                    "prm_train": dict(cfg.prm.train), "rounds": {}}
    if args.test_seed is not None:  # before any model loads: a wrong source fails here
        held_out, report["test_set"] = fresh_test_set(cfg, run_dir, problems, args.test_seed, args.rerank_problems)
        log(f"fresh held-out set: {json.dumps(report['test_set'])}")
    if args.models:  # rerank named models: nothing to label or train; their training metrics from their stage
        models = named_models(args.models)
        trained = {k: {"dir": m["path"], **{key: v for key, v in m.items() if key not in ("path", "sha")}}
                   for k, m in models.items()}
        args.rerank_kinds = list(models)
    else:
        models, trained = label_and_train(args, cfg, run_dir, policies, problems, report)
    report["reward_models"] = trained
    if args.train_only:  # no rerank, so no headline keys: never over the default full report
        report["mc_label_agreement"] = label_agreement(report)
        if args.out:
            write_report(report, args.out, start)
        return 0
    log(f"reranking best-of-{max(args.rerank_n)} on {args.rerank_problems} held-out problems ...")
    t = time.perf_counter()
    chosen = {k: models[k] for k in args.rerank_kinds or args.kinds}
    rerank = rerank_stage(cfg, policies[-1], held_out, chosen, args.rounds).run(str(run_dir))
    report["rerank_seconds"] = round(time.perf_counter() - t, 1)
    records = [json.loads(line) for line in (Path(rerank["path"]) / "records.jsonl").read_text().splitlines()]
    report["rerank"] = {k: v for k, v in rerank.items() if k not in ("path", "sha")}
    summarize(report, records, args)
    write_report(report, args.out or ROOT / "bench" / "results" / "prm.json", start)
    print_table(report)
    return 0


def write_report(report: dict, out, start: float) -> None:
    report["seconds"] = round(time.perf_counter() - start, 1)
    report["peak_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(report, indent=2, default=float) + "\n")
    log(f"wrote {out}")


def dense_config(args, run_dir: Path, problems: int, n: int):
    """--dense: the search and labels of one extra round, n samples on `problems`
    problems; every distinct sample of a problem labelled (up to n), and only problems
    with both right and wrong answers (their contrast is what a reranker needs)."""
    return config(args, run_dir, "search.algorithm=best_of_n", f"search.problems_per_round={problems}",
                  f"search.n={n}", f"prm.solutions_per_problem={n}", f"prm.min_solve_rate={1 / (2 * n)}",
                  f"prm.max_solve_rate={1 - 1 / (2 * n)}")


def search(cfg, policy: dict, problems: dict, scorer: dict | None, r: int, run_dir: str) -> dict:
    """The flow's search stages for round r (shards, then merge), run in this process
    (tasks/fanout.py's search_for_data with one shard); bench/label_noise.py and
    bench/data_quality.py call it too."""
    from searchlearn.sharding import plan_shards
    from searchlearn.stages.search import merge_stage, shard_stage

    block = cfg.execution.block_size
    shards = [shard_stage(cfg, policy, problems, scorer, r, block, blocks).run(str(run_dir))
              for blocks in plan_shards(cfg.search.problems_per_round, block, 1)]
    return merge_stage(cfg, shards, problems, r).run(str(run_dir))


def label_and_train(args, cfg, run_dir: Path, policies: list[dict], problems: dict,
                    report: dict) -> tuple[dict, dict]:
    """Steps 1-2: every round's labels (their agreement with the oracle into
    report["rounds"]), with --dense one more round's, then each kind trained on all of
    them. Returns the models and their training metrics."""
    from searchlearn.stages.reward import reward_model_stage

    labels = []
    for r in range(1, args.rounds + 1):
        log(f"round {r}: labelling round {r}'s searched problems with the policy that searched them ...")
        t = time.perf_counter()
        merged = label(cfg, policies[r - 1], latest(run_dir, f"search-r{r}"), r, str(run_dir))
        labels.append(merged)
        report["rounds"][r] = {"labels": {k: v for k, v in merged.items() if k.startswith("labels.")},
                               "mc_hard_vs_oracle": hard_agreement(merged["path"]),
                               "seconds": round(time.perf_counter() - t, 1)}
        log(json.dumps(report["rounds"][r]))
    if args.dense:
        r, dense = args.rounds + 1, dense_config(args, run_dir, *args.dense)
        log(f"dense: best-of-{args.dense[1]} on {args.dense[0]} training problems with the round-{args.rounds} policy ...")
        t = time.perf_counter()
        searched = search(dense, policies[-1], problems, None, r, str(run_dir))
        merged = label(dense, policies[-1], searched, r, str(run_dir))
        labels.append(merged)
        report["dense"] = {"problems": args.dense[0], "n": args.dense[1],
                           "search": {k: v for k, v in searched.items() if k.startswith("search.")},
                           "labels": {k: v for k, v in merged.items() if k.startswith("labels.")},
                           "seconds": round(time.perf_counter() - t, 1)}
        log(json.dumps(report["dense"]))
    models, trained = {}, {}
    for kind in args.train_only or args.kinds:
        log(f"training the {kind} on {len(labels)} label sets from the round-{args.rounds} policy ...")
        t = time.perf_counter()
        models[kind] = reward_model_stage(cfg, policies[-1], labels, kind, args.rounds).run(str(run_dir))
        trained[kind] = {**{k: v for k, v in models[kind].items() if k not in ("path", "sha")},
                         "dir": models[kind]["path"], "seconds": round(time.perf_counter() - t, 1)}
        log(kind, json.dumps(trained[kind]))
    return models, trained


def summarize(report: dict, records: list[dict], args) -> None:
    """Issue 12's headline keys, each with its problem count and interval."""
    m, n, big = report["rerank"], len(records), max(args.rerank_n)
    kinds = args.rerank_kinds or args.kinds
    kind = kinds[0]
    prefix = f"{kind}_min" if f"rerank.{kind}_min.n{big}" in m else kind
    report["problems"] = n
    auc = {k: f"rerank.{k}_min.step_auc_oracle" if f"rerank.{k}_min.step_auc_oracle" in m
           else f"rerank.{k}.step_auc_oracle" for k in kinds}
    report["step_auc_oracle"] = {k: m.get(key) for k, key in auc.items()}
    # the rerank stage's 95 % bootstrap over problems (a problem's steps move together)
    report["step_auc_oracle_ci95"] = {k: [m.get(f"{key}_lo"), m.get(f"{key}_hi")] for k, key in auc.items()}
    report["step_auc_oracle_steps"] = m.get(f"rerank.{prefix}.oracle_steps")
    # the same within a problem and step position, and a position-only scorer's pooled AUC
    report["step_auc_oracle_matched"] = {k: {"auc": m.get(f"{key}_matched"), "pairs": m.get(f"{key}_matched_pairs"),
                                             "ci95": [m.get(f"{key}_matched_lo"), m.get(f"{key}_matched_hi")]}
                                         for k, key in auc.items()}
    report["position_baseline_step_auc"] = {"auc": m.get("rerank.position_baseline.step_auc_oracle"),
                                            "ci95": [m.get("rerank.position_baseline.step_auc_oracle_lo"),
                                                     m.get("rerank.position_baseline.step_auc_oracle_hi")]}
    # right answers above wrong ones within a problem, per selector (what best-of-N needs)
    report["candidate_auc"] = {key[len("rerank."):-len(".candidate_auc")]: {
        "auc": m[key], "pairs": m[f"{key}_pairs"], "ci95": [m[f"{key}_lo"], m[f"{key}_hi"]]}
        for key in m if key.endswith(".candidate_auc")}
    # the rerank stage's paired differences (two models on the same steps, resampled alike)
    report["step_auc_oracle_differences"] = {
        key[len("rerank."):]: {"diff": m[key], "ci95": [m[f"{key}_lo"], m[f"{key}_hi"]]}
        for key in m if ".step_auc_oracle_minus_" in key and not key.endswith(("_lo", "_hi"))}
    report["bon16_weighted"] = m[f"rerank.{prefix}_weighted.n{big}"]
    report["bon16_best"] = m[f"rerank.{prefix}.n{big}"]
    report["bon16_majority"] = m[f"rerank.majority.n{big}"]
    report["bon16_random"] = m[f"rerank.random.n{big}"]
    report["selector"] = prefix
    report["bon_table"] = {f"n{k}": {method: {"acc": m[f"rerank.{method}.n{k}"],
                                              "ci95": interval(m[f"rerank.{method}.n{k}"], n)}
                                     for method in records[0][f"n{k}"]} for k in args.rerank_n}
    report["weighted_minus_majority"] = {
        f"n{k}": {method: paired_bootstrap(records, k, method, "majority", args.bootstrap)
                  for method in records[0][f"n{k}"] if method not in ("majority", "random")}
        for k in args.rerank_n}
    report["mc_label_agreement"] = label_agreement(report)


def label_agreement(report: dict) -> dict:
    """Each round's Monte-Carlo labels against the oracle (soft and hard)."""
    return {r: {"soft": row["labels"].get("labels.oracle_agreement"), "soft_auc": row["labels"].get("labels.oracle_auc"),
                "hard": row["mc_hard_vs_oracle"].get("agreement"), "hard_auc": row["mc_hard_vs_oracle"].get("auc"),
                "steps": row["mc_hard_vs_oracle"].get("steps")}
            for r, row in report["rounds"].items()}


def print_table(report: dict) -> None:
    n = report["problems"]
    print(f"\n{report['experiment']} reward models, {n} held-out problems (95 % intervals)")
    print(f"{'round':>5} {'labelled steps':>15} {'MC soft agree':>14} {'soft AUC':>9} {'MC hard agree':>14} {'hard AUC':>9}")
    for r, a in report["mc_label_agreement"].items():
        print(f"{r:>5} {a['steps'] or 0:>15} {a['soft'] or float('nan'):>14.3f} {a['soft_auc'] or float('nan'):>9.3f} "
              f"{a['hard'] or float('nan'):>14.3f} {a['hard_auc'] or float('nan'):>9.3f}")
    ci = report["step_auc_oracle_ci95"]
    print(f"\nstep AUC vs the oracle on held-out candidates ({report['step_auc_oracle_steps']} steps): "
          + ", ".join(f"{k} {v:.3f} [{ci[k][0] or float('nan'):.3f}, {ci[k][1] or float('nan'):.3f}]"
                      for k, v in report["step_auc_oracle"].items() if v is not None))
    for name, d in report["step_auc_oracle_differences"].items():
        print(f"  {name}, paired bootstrap: {d['diff']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]")
    base = report["position_baseline_step_auc"]
    if base["auc"] is not None:
        print(f"  position-only scorer (content-blind): {base['auc']:.3f} [{base['ci95'][0]:.3f}, {base['ci95'][1]:.3f}]")
    for k, d in report["step_auc_oracle_matched"].items():
        if d["auc"] is not None:
            print(f"  {k} within a problem and step position ({d['pairs']} pairs): "
                  f"{d['auc']:.3f} [{d['ci95'][0]:.3f}, {d['ci95'][1]:.3f}]")
    print("candidate AUC, right answers above wrong ones within a problem: " + ", ".join(
        f"{k} {d['auc']:.3f} [{d['ci95'][0]:.3f}, {d['ci95'][1]:.3f}] ({d['pairs']} pairs)"
        for k, d in report["candidate_auc"].items()))
    print(f"\n{'N':>4} " + " ".join(f"{m:>22}" for m in report["bon_table"]["n1"]))
    for k, row in report["bon_table"].items():
        print(f"{k[1:]:>4} " + " ".join(f"{v['acc']:.3f} [{v['ci95'][0]:.3f},{v['ci95'][1]:.3f}]".rjust(22)
                                       for v in row.values()))
    last = list(report["weighted_minus_majority"])[-1]
    print(f"\nminus majority at {last}, paired bootstrap: " + ", ".join(
        f"{m} {d['diff']:+.3f} [{d['ci95'][0]:+.3f},{d['ci95'][1]:+.3f}]"
        for m, d in report["weighted_minus_majority"][last].items()))


if __name__ == "__main__":
    sys.exit(main())
