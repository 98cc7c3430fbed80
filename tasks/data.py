from prefect import task

from searchlearn.stages import data
from tasks.cache import cached, output_dir

CODE = ("searchlearn.problems", "searchlearn.stages.data")


@task(name="prepare-problems", **cached(*CODE))
def prepare_problems(problems_cfg: dict, num_demos: int, run_dir: str) -> dict:
    """Demos (worked solutions), the search pool (answers only) and the held-out split."""
    out = output_dir(run_dir, "problems", CODE, cfg=problems_cfg, num_demos=num_demos)
    return data.prepare_problems(problems_cfg, num_demos, out)
