"""Benchmark: the project's trainers against a plain PyTorch loop, in one run.

For SFT, DPO and the PRM, on SmolLM2-135M-Instruct (converted from the packaged GGUF
into --work-dir) and quickstart-shaped data (the arithmetic demonstrations, batch 16),
three implementations train the same number of optimizer steps:

- project:   the project's trainer (learn/sft.py, learn/dpo.py, reward/prm_train.py
             on learn/scaffold.py), exactly as the flow calls it;
- reference: a plain PyTorch loop on the same model, tokens, batches (the same
             length-grouped order) and precision: forward, loss at the loss
             positions only, backward, AdamW. The target the project is held to;
- trl_default: the stock TRL / transformers trainer as this project configured it
             before the scaffold (random batches, TRL's fused LM head, fp32 unless
             --precisions says otherwise): "before" figures.

Every cell runs in its own child process (a clean peak RSS, no shared threads or
caches). Reported per cell: non-padding tokens/s over the optimizer loop, seconds
per step, first and last loss, peak RSS. Figures on a shared 2-core machine drift:
compare cells of one run, not runs.

    .venv/bin/python bench/train_throughput.py                  # everything (~15 min)
    .venv/bin/python bench/train_throughput.py --quick --json   # SFT bf16, 3 steps: one JSON object
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULT_TAG = "BENCH_RESULT "
ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="SFT only, bf16, project vs reference, 3 steps")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout (progress on stderr)")
    p.add_argument("--kinds", nargs="+", default=["sft", "dpo", "prm"], choices=["sft", "dpo", "prm"])
    p.add_argument("--precisions", nargs="+", default=["bf16", "fp32"], choices=["bf16", "fp32"])
    p.add_argument("--impls", nargs="+", default=["project", "reference", "trl_default"],
                   choices=["project", "reference", "trl_default"])
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--learning-rate", type=float, default=1e-4)
    p.add_argument("--model-dir", help="a HF checkpoint dir; default: SmolLM2 converted into --work-dir")
    p.add_argument("--work-dir", default="/tmp/searchlearn-bench")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "train_throughput.json"))
    p.add_argument("--worker", help=argparse.SUPPRESS)  # internal: kind,precision,impl
    args = p.parse_args(argv)
    if args.quick:
        args.kinds, args.precisions, args.impls, args.steps = ["sft"], ["bf16"], ["project", "reference"], 3
    return args


def log(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


# ---- data ----------------------------------------------------------------------------------

def ensure_model(args) -> str:
    if args.model_dir:
        return args.model_dir
    from dataclasses import asdict

    from searchlearn.artifacts import is_complete_dir
    from searchlearn.config.schema import PolicyConfig
    from searchlearn.models.init import materialize_base

    out = Path(args.work_dir) / "smollm2-135m-instruct"
    if not is_complete_dir(out):
        log(f"converting SmolLM2 GGUF -> {out} ...")
        materialize_base({**asdict(PolicyConfig()), "source": "smollm2_gguf"}, str(out))
    return str(out)


def demos(args, count: int) -> list[dict]:
    """Quickstart's demonstrations: {prompt, completion, question, answer}."""
    from omegaconf import OmegaConf

    from searchlearn.config import load_config
    from searchlearn.stages.data import prepare_problems
    from searchlearn.stages.policy import demo_examples
    from searchlearn.problems.base import read_problems

    cfg = load_config("quickstart", [f"init.num_demos={count}"])
    data = Path(args.work_dir) / f"problems-{count}"
    prepare_problems(OmegaConf.to_container(cfg.problems, resolve=True), count, data)
    problems = {p.id: p for p in read_problems(data / "demos.jsonl")}
    return [{**e, "question": problems[e["problem_id"]].question, "answer": problems[e["problem_id"]].answer}
            for e in demo_examples(data)]


def corrupt(completion: str) -> tuple[str, int]:
    """The completion with its first step's result off by one (a wrong step), and
    that step's index."""
    from searchlearn.formatting import join_steps, split_steps

    steps = split_steps(completion)
    first = steps[0]
    head, _, tail = first.rpartition("= ")
    number = tail.rstrip(".")
    wrong = f"{head}= {int(number) + 1}." if number.lstrip("-").isdigit() else first + " 1"
    return join_steps([wrong, *steps[1:]]), 0


def pairs(rows: list[dict]) -> list[dict]:
    return [{"prompt": r["prompt"], "chosen": r["completion"], "rejected": corrupt(r["completion"])[0]}
            for r in rows]


def prm_rows(rows: list[dict]) -> list[dict]:
    """Labelled-step rows: every demo once right (all steps 1) and once with its first
    step wrong (0 from there on)."""
    from searchlearn.formatting import split_steps

    out = []
    for i, r in enumerate(rows):
        good = split_steps(r["completion"])
        bad = split_steps(corrupt(r["completion"])[0])
        out.append({"question": r["question"], "steps": good, "labels": [1.0] * len(good), "problem_id": f"g{i}",
                    "source": "bench"})
        out.append({"question": r["question"], "steps": bad, "labels": [0.0] * len(bad), "problem_id": f"b{i}",
                    "source": "bench"})
    return out


def train_cfg(args, precision: str) -> dict:
    from dataclasses import asdict

    from searchlearn.config.schema import TrainConfig

    return {**asdict(TrainConfig()), "max_steps": args.steps, "batch_size": args.batch_size,
            "learning_rate": args.learning_rate, "warmup_ratio": 0.0, "lr_scheduler": "constant",
            "precision": precision}


# ---- the project's trainers --------------------------------------------------------------------

def run_project(kind: str, precision: str, args, model_dir: str, data: list[dict], work: Path) -> dict:
    if kind == "sft":
        from searchlearn.learn.sft import train_sft

        m = train_sft(model_dir, data, train_cfg(args, precision), str(work / "out"), seed=0)
    elif kind == "dpo":
        m = _project_dpo(precision, args, model_dir, data, work)
    else:
        from searchlearn.reward.prm_train import train_prm

        m = train_prm(model_dir, prm_rows(data), train_cfg(args, precision), work / "out", seed=0)
    return {"tokens": m["train.tokens"], "train_s": m["train.train_s"], "steps": m["train.steps"],
            "first_loss": m["train.first_loss"], "last_loss": m["train.last_loss"],
            "steady_tok_s": m.get("train.steady_tokens_per_s")}


def _project_dpo(precision, args, model_dir, data, work) -> dict:
    from searchlearn.artifacts import write_jsonl
    from searchlearn.learn.base import LearnInputs
    from searchlearn.learn.dpo import DPOLearner

    results = []
    for i, r in enumerate(data):
        cands = [{"text": r["completion"], "num_tokens": 0, "correct": True, "answer": r["answer"], "score": None},
                 {"text": corrupt(r["completion"])[0], "num_tokens": 0, "correct": False, "answer": None,
                  "score": None}]
        results.append({"problem_id": f"p{i}", "question": r["question"], "reference": r["answer"],
                        "candidates": cands, "best": 0, "tokens": 0, "tree": None})
    write_jsonl(work / "search.jsonl", results)
    inputs = LearnInputs(policy_dir=model_dir, reference_dir=model_dir, search_path=str(work / "search.jsonl"),
                         problems_path="", out_dir=str(work / "out"), seed=0)
    cfg = {"dpo": {"pairs": "solution", "max_pairs_per_problem": 1, "train": train_cfg(args, precision)}}
    return DPOLearner().learn(inputs, cfg)


# ---- the plain PyTorch loop ----------------------------------------------------------------------

def run_reference(kind: str, precision: str, args, model_dir: str, data: list[dict]) -> dict:
    """Forward, loss at the loss positions only, backward, AdamW: nothing else."""
    import torch

    from searchlearn.learn import scaffold

    scaffold.configure_cpu()
    torch.manual_seed(0)
    tokenizer = scaffold.load_tokenizer(model_dir)
    batches, step_loss, params = _reference_setup(kind, model_dir, data, tokenizer, args)
    opt = torch.optim.AdamW(params, lr=args.learning_rate, weight_decay=0.0, fused=True)
    bf16 = precision == "bf16"
    tokens, losses, start, marks = 0, [], time.perf_counter(), []
    for step in range(args.steps):
        batch = batches[step % len(batches)]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss, count = step_loss(batch)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        tokens += count
        losses.append(float(loss.detach()))
        marks.append((time.perf_counter(), tokens))
    train_s = time.perf_counter() - start
    k = max(1, len(losses) // 5)
    (t0, n0), (t1, n1) = marks[0], marks[-1]
    steady = round((n1 - n0) / (t1 - t0), 1) if len(marks) > 1 else None  # after the first step, as the project's
    return {"tokens": tokens, "train_s": round(train_s, 3), "steps": args.steps,
            "first_loss": sum(losses[:k]) / k, "last_loss": sum(losses[-k:]) / k, "steady_tok_s": steady}


def _pad(seqs, pad_id):
    import torch

    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, :len(s)], mask[i, :len(s)] = torch.tensor(s), 1
    return ids, mask


def _sequences(tokenizer, prompt: str, completion: str) -> tuple[list[int], int]:
    p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    c = tokenizer(completion, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return p + c, len(p)


def _grouped_batches(lengths, batch_size):
    from searchlearn.learn.scaffold import length_grouped_order

    order = length_grouped_order(lengths, batch_size, seed=0)
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def _completion_logps(model, ids, mask, starts):
    """Sum of log p(completion tokens) per row, the LM head only at those positions."""
    import torch

    hidden = model.model(input_ids=ids, attention_mask=mask).last_hidden_state[:, :-1]
    positions = torch.arange(ids.shape[1] - 1)[None, :]
    keep = (positions >= (starts[:, None] - 1)) & (mask[:, 1:] == 1)
    logits = model.lm_head(hidden[keep]).float()
    picked = logits.gather(-1, ids[:, 1:][keep][:, None]).squeeze(-1) - torch.logsumexp(logits, -1)
    return torch.zeros(keep.shape).masked_scatter(keep, picked).sum(-1), int(keep.sum())


def _reference_setup(kind, model_dir, data, tokenizer, args):
    import torch
    import torch.nn.functional as F

    from searchlearn.learn import scaffold

    pad = tokenizer.pad_token_id
    if kind == "sft":
        model = scaffold.load_causal_lm(model_dir)
        seqs = [_sequences(tokenizer, r["prompt"], r["completion"]) for r in data]

        def step_loss(batch):
            ids, mask = _pad([seqs[i][0] for i in batch], pad)
            logps, n = _completion_logps(model, ids, mask, torch.tensor([seqs[i][1] for i in batch]))
            return -logps.sum() / n, int(mask.sum())

        return _grouped_batches([len(s) for s, _ in seqs], args.batch_size), step_loss, model.parameters()
    if kind == "dpo":
        model, ref = scaffold.load_causal_lm(model_dir), scaffold.load_causal_lm(model_dir)
        rows = [(_sequences(tokenizer, p["prompt"], p["chosen"]), _sequences(tokenizer, p["prompt"], p["rejected"]))
                for p in pairs(data)]

        def step_loss(batch):
            seqs = [rows[i][0] for i in batch] + [rows[i][1] for i in batch]
            ids, mask = _pad([s for s, _ in seqs], pad)
            starts = torch.tensor([n for _, n in seqs])
            logps, _ = _completion_logps(model, ids, mask, starts)
            with torch.no_grad():
                ref_logps, _ = _completion_logps(ref, ids, mask, starts)
            ratio = (logps - ref_logps).view(2, -1)
            return -F.logsigmoid(0.1 * (ratio[0] - ratio[1])).mean(), int(mask.sum())

        lengths = [max(len(c[0]), len(r[0])) for c, r in rows]
        return _grouped_batches(lengths, args.batch_size), step_loss, model.parameters()
    from searchlearn.reward.prm import pad_batch
    from searchlearn.reward.prm_train import IGNORE, build_examples, load_for_training, masked_bce

    model, _, _ = load_for_training(model_dir)
    examples, _ = build_examples(tokenizer, prm_rows(data), 256)

    def step_loss(batch):
        ids, mask = pad_batch([examples[i]["input_ids"] for i in batch], pad)
        labels = torch.full(ids.shape, float(IGNORE))
        for r, i in enumerate(batch):
            labels[r, :len(examples[i]["labels"])] = torch.tensor(examples[i]["labels"])
        logits = model(input_ids=ids, attention_mask=mask).logits[..., 0]
        return masked_bce(logits, labels), int(mask.sum())

    lengths = [len(e["input_ids"]) for e in examples]
    return _grouped_batches(lengths, args.batch_size), step_loss, model.parameters()


# ---- stock TRL / transformers, as configured before the scaffold ------------------------------------

def run_trl_default(kind: str, precision: str, args, model_dir: str, data: list[dict], work: Path) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(len(os.sched_getaffinity(0)))
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    common = dict(output_dir=str(work), max_steps=args.steps, learning_rate=args.learning_rate,
                  lr_scheduler_type="constant", per_device_train_batch_size=args.batch_size,
                  bf16=precision == "bf16", use_cpu=True, gradient_checkpointing=False, logging_steps=1,
                  save_strategy="no", report_to="none", disable_tqdm=True, seed=0, dataloader_num_workers=0,
                  include_num_input_tokens_seen="non_padding")
    if kind == "sft":
        from trl import SFTConfig, SFTTrainer

        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
        rows = Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"]} for r in data])
        trainer = SFTTrainer(model=model, args=SFTConfig(**common, completion_only_loss=True, max_length=256),
                             train_dataset=rows, processing_class=tokenizer)
    elif kind == "dpo":
        from trl import DPOConfig, DPOTrainer

        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
        ref = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
        trainer = DPOTrainer(model=model, ref_model=ref, args=DPOConfig(**common, beta=0.1, max_length=256),
                             train_dataset=Dataset.from_list(pairs(data)), processing_class=tokenizer)
    else:
        trainer = _stock_prm_trainer(model_dir, tokenizer, data, common)
    from searchlearn.learn.scaffold import loss_curve

    curve = loss_curve()  # only records step times and losses
    trainer.add_callback(curve)
    start = time.perf_counter()
    result = trainer.train()
    train_s = time.perf_counter() - start
    losses = [row["loss"] for row in trainer.state.log_history if "loss" in row]
    k = max(1, len(losses) // 5)
    return {"tokens": int(trainer.state.num_input_tokens_seen), "train_s": round(train_s, 3),
            "steps": trainer.state.global_step, "first_loss": sum(losses[:k]) / k,
            "last_loss": sum(losses[-k:]) / k, "mean_loss": result.training_loss,
            "steady_tok_s": curve.steady_tokens_per_s()}


def _stock_prm_trainer(model_dir, tokenizer, data, common):
    from functools import partial

    from transformers import Trainer, TrainingArguments

    from searchlearn.reward.prm import pad_token_id
    from searchlearn.reward.prm_train import build_examples, collate, masked_bce

    from transformers import AutoModelForTokenClassification

    model = AutoModelForTokenClassification.from_pretrained(model_dir, num_labels=1)
    examples, _ = build_examples(tokenizer, prm_rows(data), 256)

    class BCE(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            labels = inputs.pop("labels")
            return masked_bce(model(**inputs).logits[..., 0], labels)

    return BCE(model=model, args=TrainingArguments(**common, remove_unused_columns=False), train_dataset=examples,
               data_collator=partial(collate, pad_id=pad_token_id(tokenizer)))


# ---- orchestration -----------------------------------------------------------------------------------

def worker(args) -> None:
    kind, precision, impl = args.worker.split(",")
    model_dir = ensure_model(args)
    need = args.steps * args.batch_size
    data = demos(args, max(need, 64))[:need]
    with tempfile.TemporaryDirectory(prefix="bench-train-") as work:
        if impl == "project":
            row = run_project(kind, precision, args, model_dir, data, Path(work))
        elif impl == "reference":
            row = run_reference(kind, precision, args, model_dir, data)
        else:
            row = run_trl_default(kind, precision, args, model_dir, data, Path(work))
    row.update(kind=kind, precision=precision, impl=impl, tok_s=round(row["tokens"] / row["train_s"], 1),
               s_per_step=round(row["train_s"] / max(row["steps"], 1), 2),
               peak_rss_gib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2))
    print(RESULT_TAG + json.dumps(row), flush=True)


def run_cell(args, kind: str, precision: str, impl: str) -> dict:
    cmd = [sys.executable, __file__, "--worker", f"{kind},{precision},{impl}", "--steps", str(args.steps),
           "--batch-size", str(args.batch_size), "--learning-rate", str(args.learning_rate),
           "--work-dir", args.work_dir] + (["--model-dir", args.model_dir] if args.model_dir else [])
    return run_child(cmd, f"{kind}/{precision}/{impl}")


def run_child(cmd: list[str], what: str, extra_env: dict | None = None) -> dict:
    """Run one benchmark cell in a child process (its own peak RSS, every core's
    threads; `extra_env` on top of this process's environment) and return the JSON
    object it printed after RESULT_TAG."""
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}:{ROOT / 'bench'}", **(extra_env or {})}
    env.pop("OMP_NUM_THREADS", None)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT_TAG)]
    if proc.returncode or not lines:
        raise RuntimeError(f"{what} failed (rc {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len(RESULT_TAG):])


def summarize(rows: list[dict]) -> dict:
    """Steady-state tokens/s (after each run's first step, which pays for fresh memory)
    compared across implementations."""
    def tok_s(kind, precision, impl):
        return next((r["steady_tok_s"] for r in rows
                     if (r["kind"], r["precision"], r["impl"]) == (kind, precision, impl)), None)

    out = {}
    for kind in sorted({r["kind"] for r in rows}):
        project, reference = tok_s(kind, "bf16", "project"), tok_s(kind, "bf16", "reference")
        before = tok_s(kind, "fp32", "trl_default")
        out[kind] = {"project_bf16_tok_s": project, "reference_bf16_tok_s": reference,
                     "project_vs_reference": round(project / reference, 3) if project and reference else None,
                     "before_fp32_tok_s": before,
                     "speedup_vs_before": round(project / before, 2) if project and before else None}
        losses = {r["precision"]: r["last_loss"] for r in rows if r["kind"] == kind and r["impl"] == "project"}
        if len(losses) == 2:
            out[kind]["last_loss_bf16_minus_fp32"] = round(losses["bf16"] - losses["fp32"], 4)
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    ensure_model(args)
    rows = []
    for kind in args.kinds:
        for precision in args.precisions:
            for impl in args.impls:
                log(f"{kind:4s} {precision:5s} {impl:12s} ...")
                row = run_cell(args, kind, precision, impl)
                log(f"  {row['tok_s']:7.1f} tok/s ({row['steady_tok_s']} after step 1)  {row['s_per_step']:6.2f} s/step  loss {row['first_loss']:.4f}"
                    f" -> {row['last_loss']:.4f}  peak RSS {row['peak_rss_gib']} GiB")
                rows.append(row)
    summary = summarize(rows)
    result = {"steps": args.steps, "batch_size": args.batch_size, "cpu_bf16": _cpu_bf16(), "rows": rows,
              "summary": summary, "when": time.strftime("%Y-%m-%d %H:%M"), "threads": len(os.sched_getaffinity(0))}
    if args.quick:
        result.update(project_tok_s=summary["sft"]["project_bf16_tok_s"],
                      reference_tok_s=summary["sft"]["reference_bf16_tok_s"])
    else:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
        log(f"wrote {args.out}")
    print(json.dumps(result if args.json else summary, indent=None if args.json else 2))
    return 0


def _cpu_bf16() -> bool:
    from searchlearn.learn.scaffold import cpu_has_bf16

    return cpu_has_bf16()


if __name__ == "__main__":
    sys.exit(main())
