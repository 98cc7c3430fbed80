from prefect import task

from searchlearn.stages import evaluate, reward
from searchlearn.stages.policy import model_path
from tasks.cache import cached, output_dir
from tasks.fanout import Fanout

LABEL_CODE = ("searchlearn.reward", "searchlearn.generation", "searchlearn.stages.reward", "searchlearn.sharding")
TRAIN_CODE = ("searchlearn.reward", "searchlearn.learn.launch", "searchlearn.learn.distributed",
              "searchlearn.stages.reward")
RERANK_CODE = ("searchlearn.evaluation", "searchlearn.reward", "searchlearn.generation",
               "searchlearn.stages.evaluate")


def label_steps(fan: Fanout, policy: dict, search_data: dict, prm_cfg: dict, gen_cfg: dict, seed: int,
                round_index: int, run_dir: str) -> dict:
    """Monte-Carlo step labels (Math-Shepherd) for this round's searched solutions, shard by shard."""
    count = search_data["search.problems"]
    plan = fan.plan(min(count, prm_cfg["problems_per_round"]) if prm_cfg["problems_per_round"] else count)
    shards = fan.map(label_shard, plan, policy=policy, search_data=search_data, prm_cfg=prm_cfg, gen_cfg=gen_cfg,
                     seed=seed, round_index=round_index, run_dir=run_dir)
    return merge_labels(shards, round_index, run_dir)


@task(name="label-shard", **cached(*LABEL_CODE))
def label_shard(policy: dict, search_data: dict, prm_cfg: dict, gen_cfg: dict, seed: int, round_index: int,
                run_dir: str, block_size: int, blocks: list[int]) -> dict:
    """Label the solutions of some blocks of this round's searched problems."""
    out = output_dir(run_dir, f"labels-r{round_index}-shards", LABEL_CODE, policy=policy["sha"],
                     data=search_data["sha"], cfg=prm_cfg, gen=gen_cfg, seed=seed, block_size=block_size,
                     blocks=blocks)
    return reward.label_shard(model_path(policy), search_data["path"], prm_cfg, gen_cfg, seed, round_index,
                              block_size, blocks, out)


@task(name="label-steps", **cached(*LABEL_CODE))
def merge_labels(shards: list[dict], round_index: int, run_dir: str) -> dict:
    """The round's labelled steps: the shards' rows in problem order."""
    out = output_dir(run_dir, f"labels-r{round_index}", LABEL_CODE, shards=[s["sha"] for s in shards])
    return reward.merge_labels([s["path"] for s in shards], out)


@task(name="train-reward-model", **cached(*TRAIN_CODE))
def train_reward_model(init: dict, labels: list[dict], prm_cfg: dict, kind: str, seed: int, round_index: int,
                       run_dir: str, launch: dict | None = None) -> dict:
    """(Re)train the PRM/ORM on all labels so far, warm-starting from `init` (`launch`: accelerate launch settings)."""
    out = output_dir(run_dir, f"{kind}-r{round_index}", TRAIN_CODE, init=init["sha"],
                     labels=[ref["sha"] for ref in labels], cfg=prm_cfg, kind=kind, seed=seed, launch=launch)
    return reward.train_reward_model(model_path(init), [ref["path"] for ref in labels], prm_cfg, seed, out, kind,
                                     launch)


@task(name="evaluate-reranking", **cached(*RERANK_CODE))
def evaluate_reranking(policy: dict, problems: dict, scorers: dict[str, dict], prm_cfg: dict, eval_cfg: dict,
                       gen_cfg: dict, seed: int, round_index: int, run_dir: str) -> dict:
    """Held-out best-of-N accuracy vs N with PRM-min/-last, ORM, majority and random."""
    out = output_dir(run_dir, f"rerank-r{round_index}", RERANK_CODE, policy=policy["sha"],
                     problems=problems["sha"], scorers={k: v["sha"] for k, v in scorers.items()}, prm=prm_cfg,
                     eval=eval_cfg, gen=gen_cfg, seed=seed)
    return evaluate.evaluate_reranking(model_path(policy), problems["path"], scorers, prm_cfg, eval_cfg, gen_cfg,
                                       seed, out)
