"""Train an implicit PRM (reward/implicit.py) on the training scaffold: on outcome
rows (kind implicit), or on step-labelled rows (kind implicit_step).

The model is the policy itself (a causal LM). Kind implicit learns each solution's
outcome with the loss BCE(σ(β·(Σ_t log πθ(y_t) − Σ_t log πref(y_t))), outcome), the
sums over the solution's tokens (Yuan et al. 2024). Kind implicit_step keeps that
parameterisation but learns every step's label (Monte-Carlo or oracle) at the step's
end: BCE(σ(β·q_k), label_k), q_k the log-ratio summed up to step k's end token, the
value the scorer reads there. It is the Math-Shepherd PRM's supervision with the
implicit PRM's head: the LM's own next-token log-probs instead of a new score head
(an ablation: the implicit PRM ranked steps better than the PRM trained on oracle
labels, and this separates the head from the labels). One loss serves both: an
outcome row is a row with one target, at its last step.

`pairwise_weight` > 0 adds a within-problem ranking term: for two solutions of one
problem whose labels at the same step index differ by at least PAIR_MARGIN,
−log σ(β·(m_better − m_worse)), m = q_θ − q_ref at that step (rStar-Math's process
preference loss, its pairs matched here by step index instead of by shared prefix;
on outcome rows, the DPO loss of the implicit-PRM paper). Why: BCE alone can fit
most of the labels from what is shared by a problem's solutions (its difficulty and
the step's position), and the models trained that way ranked a problem's own
candidates at chance (README, "Why reranking does not follow the step AUC"); a shift
that all of a problem's solutions share leaves the pair term unchanged. A problem's rows
then train in one batch: problem groups are packed into batches of at most
train.batch_size solutions (`pack_groups`; a larger group is cut into near-equal chunks).

`reward="confidence"` trains the reference-free, length-normalised values instead
(reward/implicit.py): logit_k = (ℓ̄_k − center)/scale, ℓ̄_k the mean log πθ over the
solution's tokens up to step k's end; center and scale are the mean and standard
deviation of the initial model's ℓ̄ over the training steps (one pass of πθ before
its first step; no reference is loaded, and a warm start keeps the earlier center and
scale and skips the pass), so the model starts from the policy's own confidence,
standardised, instead of from 0 everywhere. The same BCE and pair term apply to that logit.

πref is frozen, so its sums are computed once, before training, and every step runs
one forward and backward of πθ, with the LM head only at the solution's tokens
(learn/lm_head.py).

πref is the model the first implicit PRM started from: warm-starting from an earlier
implicit PRM keeps that one's reference (its prm_config.json `ref_dir`), so the
rounds keep one reward scale.
"""

from __future__ import annotations

import copy
import json
import math
import random
import tempfile
import time
from pathlib import Path
from typing import Sequence

from searchlearn.learn import scaffold
from searchlearn.learn.distributed import is_main_process
from searchlearn.reward.implicit import (ImplicitPRMScorer, check_reward, reward_of, solution_labels,
                                         token_log_probs)
from searchlearn.reward.prm import (PRM_CONFIG, encode_with_starts, length_batches, pad_batch, pad_token_id,
                                    read_prm_config)
from searchlearn.reward.prm_train import evaluate_reward_model, resolve_train_cfg

# prm.kind of each training target; the model's prm_config.json carries it.
KIND_OF_TARGETS = {"outcome": "implicit", "steps": "implicit_step"}
# Batch size for the reference's one pass over the training data (inference only).
REFERENCE_BATCH = 32
# Two labels at one step index make a ranking pair when they differ by at least this:
# oracle and hard labels (0 / 1) always do; soft Monte-Carlo values only when clearly
# apart (1 of 4 rollouts against 3 of 4 still does).
PAIR_MARGIN = 0.5


def kind_of(targets: str) -> str:
    if targets not in KIND_OF_TARGETS:
        raise ValueError(f"implicit PRM targets {targets!r} not among {sorted(KIND_OF_TARGETS)}")
    return KIND_OF_TARGETS[targets]


def build_examples(tokenizer, rows: Sequence[dict], max_length: int,
                   targets: str = "outcome") -> tuple[list[dict], dict]:
    """{input_ids, start, positions, targets} per row: the tokens up to the last
    trained step's end, the first solution token, and the end positions and labels
    trained. `outcome`: the last step only, labelled with the solution's correctness
    (its last label); a row whose last step does not fit max_length is dropped (its
    outcome would be credited to a cut solution). `steps`: every step that fits, with
    its own label (a step cut by max_length has no end to read; the steps before it
    still teach)."""
    kind_of(targets)
    examples, counts = [], {"rows": len(rows), "examples": 0, "dropped_rows": 0, "steps": 0}
    encoded = encode_with_starts(tokenizer, [r["question"] for r in rows], [r["steps"] for r in rows], max_length)
    for row, (ids, positions, start) in zip(rows, encoded):
        pairs = [(p, float(y)) for p, y in zip(positions, row["labels"]) if p is not None and p >= start]
        if targets == "outcome":
            last = positions[-1] if positions else None
            pairs = [(last, float(row["labels"][-1]))] if last is not None and last >= start else []
        if not pairs:
            counts["dropped_rows"] += 1
            continue
        examples.append({"input_ids": ids[: pairs[-1][0] + 1], "start": start, "problem_id": str(row["problem_id"]),
                         "positions": [p for p, _ in pairs], "targets": [y for _, y in pairs]})
    counts["examples"] = len(examples)
    counts["steps"] = sum(len(e["positions"]) for e in examples)
    return examples, counts


def group_by_problem(examples: Sequence[dict], pairwise: bool) -> list[list[dict]]:
    """Training items: each problem's examples together (in first-seen order) when the
    pairwise term needs them in one batch, else one example per item."""
    if not pairwise:
        return [[e] for e in examples]
    groups: dict[str, list[dict]] = {}
    for e in examples:
        groups.setdefault(e["problem_id"], []).append(e)
    return list(groups.values())


def pack_groups(groups: Sequence[Sequence[dict]], batch_size: int, seed: int) -> list[list[list[dict]]]:
    """Batches for the pairwise term: problem groups packed first-fit into batches of at
    most `batch_size` solutions, each group whole when it fits one batch; a larger group
    is cut into the fewest near-equal chunks that do (pairs across its chunks are lost).
    Groups (chunks) are shuffled with `seed`, then sorted by their longest row within
    spans of batch_size x scaffold.GROUP_BATCHES of them, so a batch pads little and
    still mixes the data.

    Why a bound, not an average: 16 samples of a problem beside the loop's 2-4 made
    "as many groups as make batch_size solutions on average" batches of 64 solutions,
    and that ran this 24 GiB machine out of memory. The packs are fixed for a run; the
    Trainer reshuffles their order every epoch."""
    rng = random.Random(seed)
    chunks = [list(g[i::k]) for g in groups for k in [math.ceil(len(g) / batch_size)] for i in range(k)]
    rng.shuffle(chunks)
    span, packs = batch_size * scaffold.GROUP_BATCHES, []
    for s in range(0, len(chunks), span):
        span_packs: list[list] = []
        room: list[int] = []  # free solutions left in each of span_packs
        for chunk in sorted(chunks[s:s + span], key=lambda c: max(len(e["input_ids"]) for e in c)):
            fit = next((i for i, free in enumerate(room) if free >= len(chunk)), None)
            if fit is None:
                span_packs.append([])
                room.append(batch_size)
                fit = -1
            span_packs[fit].append(chunk)
            room[fit] -= len(chunk)
        packs += span_packs
    return packs


def count_pairs(groups: Sequence[Sequence[dict]]) -> int:
    """Ranking pairs the pairwise term sees per epoch: `pair_mask` over each group."""
    import torch

    total = 0
    for group in groups:
        targets = _padded([e["targets"] for e in group], 0.0, torch.float)
        mask = _padded([[1] * len(e["targets"]) for e in group], 0, torch.bool)
        total += int(pair_mask(targets, mask, torch.zeros(len(group), dtype=torch.long)).sum())
    return total


def _padded(rows: Sequence[Sequence[float]], fill: float, dtype):
    import torch

    width = max(len(r) for r in rows)
    return torch.tensor([list(r) + [fill] * (width - len(r)) for r in rows], dtype=dtype)


def collate(groups: Sequence[Sequence[dict]], pad_id: int, multiple: int = 1) -> dict:
    """The groups' examples as one batch: padded ids, the solution-token labels, (B, K)
    step-end positions (0 where a row has fewer steps: masked by `target_mask`),
    targets and reference sums, each row's first solution token (`starts`) and its
    group index (`group`, for the pairs)."""
    import torch

    batch = [e for group in groups for e in group]
    ids, mask = pad_batch([b["input_ids"] for b in batch], pad_id, multiple)
    positions = _padded([b["positions"] for b in batch], 0, torch.long)
    return {"input_ids": ids, "attention_mask": mask,
            "labels": solution_labels(ids, [len(b["input_ids"]) for b in batch], [b["start"] for b in batch]),
            "positions": positions, "target_mask": _padded([[1] * len(b["positions"]) for b in batch], 0, torch.bool),
            "targets": _padded([b["targets"] for b in batch], 0.0, torch.float),
            "ref_q": _padded([b["ref_q"] for b in batch], 0.0, torch.float),
            "starts": torch.tensor([b["start"] for b in batch], dtype=torch.long),
            "group": torch.tensor([g for g, group in enumerate(groups) for _ in group], dtype=torch.long)}


def collate_packs(packs: Sequence[Sequence[Sequence[dict]]], pad_id: int, multiple: int = 1) -> dict:
    """`collate` of the packs' groups (the Trainer hands over a list of packs)."""
    return collate([g for pack in packs for g in pack], pad_id, multiple)


def prefix_sums(log_probs, positions):
    """(B, K): each row's per-token log-probs summed over its solution tokens up to each
    step-end position p (column p - 1 of the (B, T-1) cumsum: tokens 1..p, as
    implicit.step_values reads them)."""
    return log_probs.cumsum(-1).gather(-1, (positions - 1).clamp(min=0))


def reference_log_probs(ref, examples: list[dict], pad_id: int) -> list[list[float]]:
    """Σ_t log πref(y_t) over each example's solution tokens up to each trained step's
    end, batched by length, under the same autocast as training (so πθ = πref gives a
    zero margin at step 0)."""
    import torch

    out: list[list[float]] = [[] for _ in examples]
    device = next(ref.parameters()).device
    bf16 = scaffold.resolve_precision("auto") == "bf16"
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        for indices in length_batches([len(e["input_ids"]) for e in examples], REFERENCE_BATCH):
            chunk = [examples[i] for i in indices]
            batch = {k: v.to(device) for k, v in collate([[{**e, "ref_q": [0.0]}] for e in chunk], pad_id).items()}
            logp = token_log_probs(ref, batch["input_ids"], batch["attention_mask"], batch["labels"])
            sums = prefix_sums(logp, batch["positions"])
            for row, i in enumerate(indices):
                out[i] = sums[row, : len(examples[i]["positions"])].tolist()
    return out


def step_logits(prefix, ref_q, positions, starts, reward: dict):
    """(B, K) logit of each trained step from πθ's prefix sums (`prefix_sums`): the
    log-ratio's β·(q_θ − q_ref), or the reference-free (ℓ̄_k − center)/scale, ℓ̄_k the
    mean over the solution's tokens starts..p_k (module docstring)."""
    if reward["reward"] == "confidence":
        counts = (positions - starts[:, None] + 1).clamp(min=1)
        return (prefix / counts - reward["center"]) / reward["scale"]
    return reward["beta"] * (prefix - ref_q)


def confidence_stats(examples: Sequence[dict], sums: Sequence[Sequence[float]]) -> tuple[float, float]:
    """(center, scale): mean and standard deviation of the initial model's per-token
    mean log-prob up to each trained step (ℓ̄_k, from its prefix `sums` per example), so
    the confidence reward starts standardised (scale 1 if they do not spread)."""
    means = [q / (p - e["start"] + 1) for e, qs in zip(examples, sums) for q, p in zip(qs, e["positions"])]
    center = sum(means) / len(means)
    spread = math.sqrt(sum((m - center) ** 2 for m in means) / len(means))
    return center, (spread if spread > 0 else 1.0)


def attach_reference(examples: list[dict], ref, policy, settings: dict, pad_id: int) -> None:
    """Set each example's `ref_q`: πref's prefix sums for the log-ratio (`ref` given).
    The confidence reward reads no reference, only center and scale; those come from
    the initial model (πθ before its first step, one scoring pass) unless a warm start
    already fixed them in `settings`, which this fills in place."""
    if ref is not None:
        sums = reference_log_probs(ref, examples, pad_id)
    else:
        if "center" not in settings:
            initial = reference_log_probs(policy, examples, pad_id)
            settings.update(zip(("center", "scale"), confidence_stats(examples, initial)))
        sums = [[0.0] * len(e["positions"]) for e in examples]  # the confidence logits never read them
    for e, s in zip(examples, sums):
        e["ref_q"] = s


def pair_mask(targets, mask, group):
    """(B, B, K) bool: row i ranks above row j at step index k (same group, both have
    step k, targets differ by at least PAIR_MARGIN)."""
    same = group[:, None] == group[None, :]
    both = mask[:, None, :] & mask[None, :, :]
    return same[:, :, None] & both & (targets[:, None, :] - targets[None, :, :] >= PAIR_MARGIN)


def implicit_loss(margin, targets, mask, group=None, pairwise_weight: float = 0.0):
    """BCE of σ(margin) (`step_logits`: β·(q_θ − q_ref) for the log-ratio) against each
    trained step's target, averaged over the steps in the batch (outcome rows: one step
    each, so a mean over solutions); plus `pairwise_weight` × the mean of
    −log σ(margin_i − margin_j) over the batch's ranking pairs (`pair_mask`; nothing
    where the batch has none)."""
    import torch.nn.functional as F

    loss = F.binary_cross_entropy_with_logits(margin, targets.float(), reduction="none")
    loss = (loss * mask).sum() / mask.sum().clamp(min=1)
    if pairwise_weight > 0 and group is not None:
        pairs = pair_mask(targets, mask, group)
        if pairs.any():
            loss = loss + pairwise_weight * F.softplus(-(margin[:, None, :] - margin[None, :, :]))[pairs].mean()
    return loss


def _trainer_class(reward: dict, pairwise_weight: float):
    from transformers import Trainer

    class ImplicitPRMTrainer(scaffold.grouped(Trainer)):
        loss_is_scaled_for_ga = False  # a per-micro-batch mean; Trainer divides by grad_accum

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            labels, positions, mask = inputs.pop("labels"), inputs.pop("positions"), inputs.pop("target_mask")
            targets, ref_q, group = inputs.pop("targets"), inputs.pop("ref_q"), inputs.pop("group")
            starts = inputs.pop("starts")
            logp = token_log_probs(model, inputs["input_ids"], inputs["attention_mask"], labels)
            margin = step_logits(prefix_sums(logp, positions), ref_q, positions, starts, reward)
            loss = implicit_loss(margin, targets, mask, group, pairwise_weight)
            return (loss, None) if return_outputs else loss

    return ImplicitPRMTrainer


def load_models(init_dir: str | Path, reference: bool = True):
    """(policy, frozen reference, tokenizer, ref_dir, init_kind), both models with the
    compact LM head. From a causal-LM checkpoint the reference is a copy of it; from
    an earlier implicit PRM, that one's reference. Without `reference` (the confidence
    reward, which reads none) the reference is None and the policy is put where the
    Trainer will put it, for the one pass over its initial log-probs."""
    import torch

    from searchlearn.learn.lm_head import add_compact_lm_head

    warm = (Path(init_dir) / PRM_CONFIG).is_file()
    device = "cuda" if torch.cuda.is_available() else "cpu"  # where Trainer puts πθ
    policy, tokenizer = scaffold.load_causal_lm(init_dir), scaffold.load_tokenizer(init_dir)
    ref_dir = read_prm_config(init_dir)["ref_dir"] if warm else str(init_dir)
    ref = None
    if reference:
        ref = scaffold.load_causal_lm(ref_dir) if warm else copy.deepcopy(policy)
        ref.eval().requires_grad_(False).to(device)
        add_compact_lm_head(ref)
    else:
        policy.to(device)
    add_compact_lm_head(policy)
    return policy, ref, tokenizer, ref_dir, ("warm_start" if warm else "causal_lm")


def reward_settings(init_dir: str | Path, reward: str, beta: float) -> dict:
    """The step logit's settings (`step_logits`, saved in prm_config.json): β, and when
    warm-starting the confidence reward, the earlier model's center and scale (one
    reward scale across rounds, as the log-ratio keeps one reference; a fresh one's
    come from `confidence_stats`). Checked before any model loads."""
    settings = {"reward": check_reward(reward), "beta": beta}
    if (Path(init_dir) / PRM_CONFIG).is_file():
        earlier = read_prm_config(init_dir)
        if reward_of(earlier) != reward:
            raise ValueError(f"{init_dir}: an implicit PRM with the {reward_of(earlier)} reward cannot warm-start "
                             f"one with the {reward} reward (prm.<kind>.reward changed between rounds)")
        if reward == "confidence":
            settings.update(center=float(earlier["center"]), scale=float(earlier["scale"]))
    return settings


def train_implicit(init_dir: str | Path, rows: Sequence[dict], train_cfg: dict, out_dir: str | Path,
                   seed: int = 0, eval_rows: Sequence[dict] | None = None, beta: float = 0.05,
                   targets: str = "outcome", pairwise_weight: float = 0.0, reward: str = "log_ratio") -> dict:
    """Train an implicit PRM from `init_dir` and write it to `out_dir` (causal LM,
    tokenizer, prm_config.json with `ref_dir`, `beta` and `reward`; atomically): on
    outcome rows (`targets` outcome, kind implicit) or on every step's label (`steps`,
    kind implicit_step), with the log-ratio or the reference-free confidence reward.
    Metrics as prm_train.train_prm's, with eval AUCs from the step values."""
    from transformers import set_seed

    start = time.perf_counter()
    cfg = resolve_train_cfg(train_cfg)
    scaffold.configure_cpu()
    kind = kind_of(targets)
    settings = reward_settings(init_dir, reward, beta)
    set_seed(seed)
    policy, ref, tokenizer, ref_dir, init_kind = load_models(init_dir, reference=reward == "log_ratio")
    examples, counts = build_examples(tokenizer, rows, cfg["max_length"], targets)
    if not examples:
        raise ValueError(f"no trainable implicit-PRM examples among {len(rows)} rows (all truncated or empty)")
    pad_id = pad_token_id(tokenizer)
    attach_reference(examples, ref, policy, settings, pad_id)
    trained = [y for e in examples for y in e["targets"]]
    groups = group_by_problem(examples, pairwise_weight > 0)
    packs = pack_groups(groups, cfg["batch_size"], seed) if pairwise_weight > 0 else None
    metrics = {**{f"data.{k}": v for k, v in counts.items()}, "init_kind": init_kind, "target": kind,
               "data.positive_rate": sum(trained) / len(trained), "data.groups": len(groups),
               "data.ranking_pairs": count_pairs([g for pack in packs for g in pack]) if packs else 0,
               "data.packed_batches": len(packs) if packs else 0,
               **{f"reward.{k}": v for k, v in settings.items() if k in ("center", "scale")}}
    config = {"kind": kind, **settings, "pairwise_weight": pairwise_weight, "ref_dir": str(ref_dir),
              "max_length": cfg["max_length"],
              "init_dir": str(init_dir), "init_kind": init_kind, "seed": seed, "train": cfg,
              "step_separator": "\n", "prompt_format": "formatting.build_prompt"}

    def extras(tmp: Path) -> None:
        tokenizer.save_pretrained(tmp)
        (tmp / PRM_CONFIG).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")

    with tempfile.TemporaryDirectory(prefix="prm-trainer-") as scratch:
        trainer, curve = _build_trainer(policy, packs or groups, cfg, seed, scratch, pad_id, settings,
                                        pairwise_weight)
        metrics.update(scaffold.fit(trainer, curve, start))
        if eval_rows and is_main_process():
            scorer = ImplicitPRMScorer.from_models(trainer.model, ref, tokenizer, config)
            metrics.update(evaluate_reward_model(scorer, eval_rows, per_step=targets == "steps"))
        scaffold.save(trainer, out_dir, config, metrics, extras)
    return metrics


def _build_trainer(model, items: list, cfg: dict, seed: int, scratch: str, pad_id: int, reward: dict,
                   pairwise_weight: float):
    from functools import partial

    from transformers import TrainingArguments

    # train.batch_size counts solutions. Without the pair term an item is a group of one
    # solution, length-grouped by the scaffold's sampler; with it an item is a pack of
    # problem groups (`pack_groups`), one per step, in the Trainer's random order.
    if pairwise_weight > 0:
        collator, lengths, cfg = collate_packs, None, {**cfg, "batch_size": 1}
    else:
        collator, lengths = collate, [sum(len(e["input_ids"]) for e in g) for g in items]
    args = scaffold.training_arguments(TrainingArguments, cfg, scratch, seed,
                                       scaffold.planned_steps(len(items), cfg),
                                       remove_unused_columns=False, include_num_input_tokens_seen="non_padding")
    curve = scaffold.loss_curve()
    trainer = _trainer_class(reward, pairwise_weight)(
        model=model, args=args, train_dataset=items, callbacks=[curve],
        data_collator=partial(collator, pad_id=pad_id, multiple=cfg["pad_to_multiple_of"]))
    trainer.lengths = lengths
    return trainer, curve
