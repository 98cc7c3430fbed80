from prefect import task

from searchlearn.stages import search
from searchlearn.stages.policy import model_path
from tasks.cache import cached, output_dir
from tasks.fanout import Fanout

CODE = ("searchlearn.search", "searchlearn.generation", "searchlearn.stages.search", "searchlearn.answers",
        "searchlearn.sharding")


def search_for_data(fan: Fanout, policy: dict, problems: dict, scorer: dict | None, search_cfg: dict,
                    gen_cfg: dict, seed: int, round_index: int, run_dir: str) -> dict:
    """Spend search compute on this round's training problems, shard by shard."""
    plan = fan.plan(search_cfg["problems_per_round"])
    shards = fan.map(search_shard, plan, policy=policy, problems=problems, scorer=scorer, search_cfg=search_cfg,
                     gen_cfg=gen_cfg, seed=seed, round_index=round_index, run_dir=run_dir)
    return merge_search(shards, problems, search_cfg, seed, round_index, run_dir)


@task(name="search-shard", **cached(*CODE))
def search_shard(policy: dict, problems: dict, scorer: dict | None, search_cfg: dict, gen_cfg: dict, seed: int,
                 round_index: int, run_dir: str, block_size: int, blocks: list[int]) -> dict:
    """Search some blocks of this round's problems and verify every candidate."""
    out = output_dir(run_dir, f"search-r{round_index}-shards", CODE, policy=policy["sha"], problems=problems["sha"],
                     scorer=scorer and scorer["sha"], cfg=search_cfg, gen=gen_cfg, seed=seed, block_size=block_size,
                     blocks=blocks)
    return search.search_shard(model_path(policy), problems["path"], search_cfg, gen_cfg, scorer, seed,
                               round_index, block_size, blocks, out)


@task(name="search-for-data", **cached(*CODE))
def merge_search(shards: list[dict], problems: dict, search_cfg: dict, seed: int, round_index: int,
                 run_dir: str) -> dict:
    """The round's search data: the shards' results in problem order."""
    out = output_dir(run_dir, f"search-r{round_index}", CODE, shards=[s["sha"] for s in shards],
                     problems=problems["sha"], cfg=search_cfg, seed=seed)
    return search.merge_search([s["path"] for s in shards], problems["path"], search_cfg, seed, round_index, out)
