from prefect import task

from searchlearn.stages import search
from searchlearn.stages.policy import model_path
from tasks.cache import cached, output_dir

CODE = ("searchlearn.search", "searchlearn.generation", "searchlearn.stages.search", "searchlearn.answers")


@task(name="search-for-data", **cached(*CODE))
def search_for_data(policy: dict, problems: dict, scorer: dict | None, search_cfg: dict, gen_cfg: dict,
                    seed: int, round_index: int, run_dir: str) -> dict:
    """Spend search compute on this round's training problems; verify every candidate."""
    out = output_dir(run_dir, f"search-r{round_index}", CODE, policy=policy["sha"], problems=problems["sha"],
                     scorer=scorer and scorer["sha"], cfg=search_cfg, gen=gen_cfg, seed=seed)
    return search.search_round(model_path(policy), problems["path"], search_cfg, gen_cfg, scorer, seed,
                               round_index, out)
