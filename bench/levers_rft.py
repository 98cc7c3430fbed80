"""Lever sweep (see bench/levers.py; one core, taskset -c 0): RFT hyperparameters on one fixed round of search data from a given init.
usage: bench/levers_rft.py NAME INIT_DIR '{"problems":256,"n":4}' '[{"lr":5e-5,"warmup":0.2,"epochs":1}, ...]'"""
import json, os, sys, time, random, math
from pathlib import Path
from dataclasses import asdict
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
ROOT = Path(__file__).resolve().parents[1]
EXP = ROOT / "bench" / "results" / "levers"; EXP.mkdir(parents=True, exist_ok=True)
name, init = sys.argv[1], sys.argv[2]
sopt = {"problems": 256, "n": 4, "temperature": 0.8, "seed": 0, "max_per_problem": 2, "eval_n": 200}
sopt.update(json.loads(sys.argv[3]))
configs = json.loads(sys.argv[4])
out_path = EXP / f"{name}.jsonl"
log = lambda row: (print(json.dumps(row), flush=True), out_path.open("a").write(json.dumps(row) + "\n"))
from searchlearn.problems.base import read_problems
from searchlearn.problems.gsm8k import load_jsonl
from searchlearn.learn.sft import train_sft
from searchlearn.learn.rft import select_rft_examples
from searchlearn.generation import get_generator
from searchlearn.evaluation import evaluate
from searchlearn.search.best_of_n import BestOfN
from searchlearn.search.base import SearchBudget, SearchResult
from searchlearn.config.schema import TrainConfig
from searchlearn.artifacts import write_jsonl
data = Path("/tmp/searchlearn-levers/problems-1024")  # written by bench/levers.py
pool = read_problems(data / "pool.jsonl")
test = read_problems(data / "test.jsonl")[: sopt["eval_n"]]
hw = load_jsonl(ROOT / "src" / "searchlearn" / "problems" / "data" / "handwritten.jsonl", split="handwritten")
demo_ids = {json.loads(l)["id"] for l in open(data / "demos.jsonl")}
gen_cfg = {"backend": "vllm", "kv_cache_gib": 4}
key = f"{Path(init).name}-{sopt['problems']}-{sopt['n']}-{sopt['temperature']}-{sopt['seed']}"
sres = EXP / f"search-{key}.jsonl"
if not sres.exists():
    rng = random.Random(sopt["seed"])
    probs = rng.sample([p for p in pool if p.id not in demo_ids], sopt["problems"])
    g = get_generator(init, gen_cfg, 0); g.reseed(1001)
    t = time.perf_counter()
    res = BestOfN("majority").search(probs, g, None, SearchBudget(n=sopt["n"], temperature=sopt["temperature"], max_new_tokens=160))
    write_jsonl(sres, [r.to_dict() for r in res])
    log({"search_s": round(time.perf_counter() - t, 1), "key": key})
results = [SearchResult.from_dict(json.loads(l)) for l in open(sres)]
meta = {p.id: p.meta for p in pool}
by_steps = {}
for r in results:
    k = meta[r.problem_id]["num_steps"]; by_steps.setdefault(k, []).append(any(c.correct for c in r.candidates))
log({"any_correct_by_steps": {k: round(sum(v)/len(v), 3) for k, v in sorted(by_steps.items())}, "n": {k: len(v) for k, v in sorted(by_steps.items())}})
def ev(policy):
    g = get_generator(policy, gen_cfg, 0); g.reseed(1234)
    a, _ = evaluate(test, g, 0, 0.8, 160); b, _ = evaluate(hw, g, 0, 0.8, 160)
    return a["greedy_acc"], b["greedy_acc"]
for c in configs:
    mpp = c.get("mpp", sopt["max_per_problem"])
    traces = select_rft_examples(results, mpp, True)
    if c.get("only_unsolved_greedy"):
        pass
    tc = {**asdict(TrainConfig()), "epochs": c.get("epochs", 1), "learning_rate": c["lr"], "warmup_ratio": c.get("warmup", 0.0),
          "batch_size": c.get("batch", 16), "lr_scheduler": c.get("sched", "cosine")}
    out = EXP / name / f"cfg{configs.index(c)}"
    t = time.perf_counter()
    m = train_sft(init, traces, tc, str(out), seed=1)
    g_acc, h_acc = ev(str(out))
    log({**c, "traces": len(traces), "greedy": g_acc, "hw": round(h_acc, 3), "steps": m["train.steps"], "loss": [round(m["train.first_loss"],4), round(m["train.last_loss"],4)], "s": round(time.perf_counter() - t, 1)})
