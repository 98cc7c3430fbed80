"""The driver of the lever sweeps behind quickstart's sizes (README: "Does the loop teach?").

Quickstart-sized search + learning straight on the core functions (no Prefect, no
MLflow, no cache), so one setting can change at a time: init demos/epochs/lr/warm-up,
problems and samples per round, traces kept per problem, round lr/epochs, training on
all rounds' traces (accumulate) or the last round's, starting each round from the init
or the previous policy. Greedy on 200 held-out problems and the hand-written set every
round. The sweeps were run on ONE core (taskset -c 0), so their seconds are one core's.

    taskset -c 0 .venv/bin/python bench/levers.py NAME '{"init_epochs": 4, "warmup": 0.1}'

Writes bench/results/levers/NAME.jsonl: the options, then one row per round.
"""
import json, os, sys, time, random, math
from pathlib import Path
from dataclasses import asdict

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
ROOT = Path(__file__).resolve().parents[1]
EXP = ROOT / "bench" / "results" / "levers"; EXP.mkdir(parents=True, exist_ok=True)
name = sys.argv[1]
opt = {"init_demos": 128, "init_epochs": 4, "init_lr": 1e-4, "rounds": 3, "problems": 256, "n": 4,
       "temperature": 0.8, "max_per_problem": 2, "round_epochs": 1, "round_lr": 5e-5, "accumulate": False,
       "init_from": "previous", "eval_n": 200, "batch": 16, "hard_focus": False, "reference_demos": 0,
       "warmup": 0.0, "seed": 0, "scheduler": "cosine", "dedupe": True, "init_group": True}
opt.update(json.loads(sys.argv[2]) if len(sys.argv) > 2 else {})
out_path = EXP / f"{name}.jsonl"
out_path.write_text("")
log = lambda row: (print(json.dumps(row), flush=True), out_path.open("a").write(json.dumps(row) + "\n"))
log({"opt": opt})

from omegaconf import OmegaConf
from searchlearn.config import load_config
from searchlearn.stages.data import prepare_problems
from searchlearn.stages.policy import demo_examples
from searchlearn.problems.base import read_problems
from searchlearn.problems.gsm8k import load_jsonl
from searchlearn.learn.sft import train_sft
from searchlearn.learn.rft import select_rft_examples
from searchlearn.generation import get_generator
from searchlearn.evaluation import evaluate
from searchlearn.search.best_of_n import BestOfN
from searchlearn.search.base import SearchBudget
from searchlearn.config.schema import TrainConfig

cfg = load_config("quickstart", ["init.num_demos=1024"])
data = Path("/tmp/searchlearn-levers/problems-1024")
prepare_problems(OmegaConf.to_container(cfg.problems, resolve=True), 1024, data)
demos_all = demo_examples(data)
pool = read_problems(data / "pool.jsonl")
test = read_problems(data / "test.jsonl")[: opt["eval_n"]]
hw = load_jsonl(ROOT / "src" / "searchlearn" / "problems" / "data" / "handwritten.jsonl", split="handwritten")
base = "/tmp/searchlearn-bench/smollm2-135m-instruct"
gen_cfg = {"backend": "vllm", "kv_cache_gib": 4}
run = EXP / name
run.mkdir(exist_ok=True)


def tcfg(epochs, lr, **kw):
    return {**asdict(TrainConfig()), "epochs": epochs, "learning_rate": lr, "warmup_ratio": opt["warmup"],
            "group_by_length": opt["init_group"],
            "batch_size": opt["batch"], "lr_scheduler": opt["scheduler"], **kw}


def se(p, n):
    return math.sqrt(max(p * (1 - p), 1e-9) / n)


def evaluate_both(policy, r, extra):
    t = time.perf_counter()
    g = get_generator(policy, gen_cfg, 0)
    g.reseed(1234)
    m_test, _ = evaluate(test, g, 0, 0.8, 160)
    m_hw, rec_hw = evaluate(hw, g, 0, 0.8, 160)
    row = {"round": r, "greedy": m_test["greedy_acc"], "greedy_se": round(se(m_test["greedy_acc"], len(test)), 4),
           "hw": m_hw["greedy_acc"], "hw_se": round(se(m_hw["greedy_acc"], len(hw)), 4),
           "eval_s": round(time.perf_counter() - t, 1), "eval_tokens": m_test["tokens"] + m_hw["tokens"], **extra}
    log(row)
    return row


t0 = time.perf_counter()
if opt["reference_demos"]:
    ex = demos_all[: opt["reference_demos"]]
    m = train_sft(base, ex, tcfg(opt["init_epochs"], opt["init_lr"]), str(run / "ref"), seed=0)
    evaluate_both(str(run / "ref"), 0, {"train_s": m["train.train_s"], "tok_s": m["train.tokens_per_s"],
                                          "loss": [m["train.first_loss"], m["train.last_loss"]], "wall": round(time.perf_counter() - t0, 1)})
    sys.exit(0)

init = EXP / (f"init-{opt['init_demos']}-{opt['init_epochs']}-{opt['init_lr']}-{opt['batch']}-{opt['scheduler']}-{opt['warmup']}" + ("" if opt["init_group"] else "-random"))
if not (init / "_COMPLETE").exists():
    m = train_sft(base, demos_all[: opt["init_demos"]], tcfg(opt["init_epochs"], opt["init_lr"]), str(init), seed=0)
else:
    m = json.loads((init / "train_metrics.json").read_text())
evaluate_both(str(init), 0, {"train_s": m.get("train.train_s"), "tok_s": m.get("train.tokens_per_s"),
                             "steps": m.get("train.steps"),
                             "loss": [m.get("train.first_loss"), m.get("train.last_loss")], "wall": round(time.perf_counter() - t0, 1)})
policy, all_traces = str(init), []
used = set(d["problem_id"] for d in demos_all[: opt["init_demos"]])
rng = random.Random(opt["seed"])
solve_rate = {}
for r in range(1, opt["rounds"] + 1):
    t = time.perf_counter()
    candidates = [p for p in pool if p.id not in used]
    if opt["hard_focus"] and solve_rate:
        # prefer unseen problems; then previously partly-solved ones
        pass
    probs = rng.sample(candidates, min(opt["problems"], len(candidates)))
    g = get_generator(policy, gen_cfg, 0)
    g.reseed(1000 + r)
    budget = SearchBudget(n=opt["n"], temperature=opt["temperature"], max_new_tokens=160)
    results = BestOfN("majority").search(probs, g, None, budget)
    search_s = time.perf_counter() - t
    tokens = sum(x.tokens for x in results)
    solved_any = sum(any(c.correct for c in x.candidates) for x in results) / len(results)
    cand_acc = sum(c.correct for x in results for c in x.candidates) / sum(len(x.candidates) for x in results)
    traces = select_rft_examples(results, opt["max_per_problem"], opt["dedupe"])
    all_traces += traces
    train_set = all_traces if opt["accumulate"] else traces
    start_from = str(init) if opt["init_from"] == "init" else policy
    if opt["init_from"] == "base":
        start_from = base
        train_set = demos_all[: opt["init_demos"]] + all_traces
    out = run / f"r{r}"
    t2 = time.perf_counter()
    m = train_sft(start_from, train_set, tcfg(opt["round_epochs"], opt["round_lr"]), str(out), seed=r)
    policy = str(out)
    evaluate_both(policy, r, {"search_s": round(search_s, 1), "search_tokens": tokens, "any_correct": round(solved_any, 3),
                              "cand_acc": round(cand_acc, 3), "traces": len(traces), "train_examples": len(train_set),
                              "train_s": m.get("train.train_s"), "tok_s": m.get("train.tokens_per_s"), "steps": m.get("train.steps"),
                              "loss": [m.get("train.first_loss"), m.get("train.last_loss")],
                              "wall": round(time.perf_counter() - t0, 1)})
log({"total_s": round(time.perf_counter() - t0, 1)})
