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


SCALING_CODE = ("searchlearn.search", "searchlearn.generation", "searchlearn.reward", "searchlearn.stages.evaluate",
                "searchlearn.answers", "searchlearn.sharding")


@task(name="evaluate-scaling", **cached(*SCALING_CODE))
def evaluate_scaling(policy: dict, problems: dict, scorer: dict | None, scaling_cfg: dict, search_cfg: dict,
                     eval_cfg: dict, gen_cfg: dict, seed: int, round_index: int, run_dir: str) -> dict:
    """Held-out accuracy vs generated tokens for every search method at every budget."""
    out = output_dir(run_dir, f"scaling-r{round_index}", SCALING_CODE, policy=policy["sha"],
                     problems=problems["sha"], scorer=scorer and scorer["sha"], cfg=scaling_cfg, search=search_cfg,
                     eval=eval_cfg, gen=gen_cfg, seed=seed)
    return evaluate.evaluate_scaling(model_path(policy), problems["path"], scorer, scaling_cfg, search_cfg, eval_cfg,
                                     gen_cfg, seed, out)
