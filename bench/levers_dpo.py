"""Lever sweep (see bench/levers.py; one core, taskset -c 0): DPO (and RPO) on one fixed round of search data. usage: bench/levers_dpo.py NAME INIT SEARCH_JSONL CONFIGS_JSON"""
import json, os, sys, time
from pathlib import Path
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
ROOT = Path(__file__).resolve().parents[1]
EXP = ROOT / "bench" / "results" / "levers"; EXP.mkdir(parents=True, exist_ok=True)
name, init, sres, configs = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
out_path = EXP / f"{name}.jsonl"
log = lambda row: (print(json.dumps(row), flush=True), out_path.open("a").write(json.dumps(row) + "\n"))
from searchlearn.problems.base import read_problems
from searchlearn.problems.gsm8k import load_jsonl
from searchlearn.generation import get_generator
from searchlearn.evaluation import evaluate
from searchlearn.learn.base import LearnInputs
from searchlearn.learn.dpo import DPOLearner
from searchlearn.learn.rft import RejectionSamplingFT
data = Path("/tmp/searchlearn-levers/problems-1024")  # written by bench/levers.py
test = read_problems(data / "test.jsonl")[:200]
hw = load_jsonl(ROOT / "src" / "searchlearn" / "problems" / "data" / "handwritten.jsonl", split="handwritten")
gen_cfg = {"backend": "vllm", "kv_cache_gib": 4}
def ev(policy):
    g = get_generator(policy, gen_cfg, 0); g.reseed(1234)
    a, _ = evaluate(test, g, 0, 0.8, 160); b, _ = evaluate(hw, g, 0, 0.8, 160)
    return a["greedy_acc"], b["greedy_acc"]
log({"init": init, "eval": ev(init)})
for i, c in enumerate(configs):
    out = EXP / name / f"cfg{i}"
    inputs = LearnInputs(policy_dir=init, reference_dir=init, search_path=sres, problems_path="", out_dir=str(out), seed=1)
    t = time.perf_counter()
    train = {"learning_rate": c["lr"], "epochs": c.get("epochs", 1), "warmup_ratio": 0.1, "batch_size": c.get("batch", 8)}
    if c.get("algo", "dpo") == "dpo":
        cfg = {"dpo": {"pairs": "solution", "max_pairs_per_problem": c.get("mpp", 4), "beta": c.get("beta", 0.1),
                       "loss_type": c.get("loss", "sigmoid"), "train": train}}
        m = DPOLearner().learn(inputs, cfg)
    else:
        cfg = {"rft": {"max_per_problem": c.get("mpp", 2), "dedupe": True, "train": {**train, "batch_size": 16}}}
        m = RejectionSamplingFT().learn(inputs, cfg)
    g, h = ev(str(out))
    log({**c, "greedy": g, "hw": round(h, 3), "steps": m.get("train.steps"), "pairs": m.get("dpo.pairs"),
         "loss": [m.get("train.first_loss"), m.get("train.last_loss")], "margin": m.get("dpo.reward_margin_last"), "s": round(time.perf_counter() - t, 1)})
