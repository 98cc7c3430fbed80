from prefect import task

from searchlearn.stages import evaluate
from searchlearn.stages.policy import model_path
from tasks.cache import cached, output_dir

CODE = ("searchlearn.evaluation", "searchlearn.generation", "searchlearn.stages.evaluate", "searchlearn.answers")


@task(name="evaluate-policy", **cached(*CODE))
def evaluate_policy(policy: dict, problems: dict, eval_cfg: dict, gen_cfg: dict, seed: int, round_index: int,
                    run_dir: str) -> dict:
    """Held-out greedy accuracy, maj@k, pass@k and tokens."""
    out = output_dir(run_dir, f"eval-r{round_index}", CODE, policy=policy["sha"], problems=problems["sha"],
                     cfg=eval_cfg, gen=gen_cfg, seed=seed)
    return evaluate.evaluate_policy(model_path(policy), problems["path"], eval_cfg, gen_cfg, seed, out)
