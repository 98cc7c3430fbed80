from prefect import task

from searchlearn.stages import learn
from searchlearn.stages.policy import model_path
from tasks.cache import cached, output_dir

CODE = ("searchlearn.learn", "searchlearn.stages.learn")


@task(name="learn-policy", **cached(*CODE))
def learn_policy(policy: dict, reference: dict, search_data: dict, learn_cfg: dict, seed: int,
                 round_index: int, run_dir: str, scorer: dict | None = None, launch: dict | None = None) -> dict:
    """Improve the policy from the round's search data (RFT / DPO / GRPO; `scorer`: a PRM shaping GRPO's
    reward; `launch`: accelerate launch settings)."""
    out = output_dir(run_dir, f"policy-r{round_index}", CODE, policy=policy["sha"], reference=reference["sha"],
                     data=search_data["sha"], cfg=learn_cfg, seed=seed, scorer=scorer and scorer["sha"],
                     launch=launch)
    return learn.learn_round(model_path(policy), model_path(reference), search_data["path"], learn_cfg, seed, out,
                             scorer, launch)
