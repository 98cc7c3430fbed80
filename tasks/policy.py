from prefect import task

from searchlearn.stages import policy
from tasks.cache import cached, output_dir

BASE_CODE = ("searchlearn.models", "searchlearn.stages.policy")
SFT_CODE = ("searchlearn.learn.sft", "searchlearn.learn.launch", "searchlearn.learn.distributed",
            "searchlearn.stages.policy")


@task(name="init-base-model", **cached(*BASE_CODE))
def init_base_model(policy_cfg: dict, problems: dict, seed: int, run_dir: str) -> dict:
    """The base LM as a plain HF checkpoint (GGUF conversion / hub / tiny from scratch)."""
    # Only the tiny tokenizer is trained on the demos; other sources ignore them, so
    # a change of problems must not re-convert or re-download a real model.
    corpus = problems["sha"] if policy_cfg["source"] == "tiny" else None
    out = output_dir(run_dir, "base-model", BASE_CODE, cfg=policy_cfg, corpus=corpus, seed=seed)
    return policy.materialize_policy(policy_cfg, problems["path"], seed, out)


@task(name="sft-on-demos", **cached(*SFT_CODE))
def sft_on_demos(base: dict, problems: dict, init_cfg: dict, seed: int, run_dir: str,
                 launch: dict | None = None) -> dict:
    """Policy initialization: SFT the base model on worked demonstrations (`launch`: accelerate launch settings)."""
    out = output_dir(run_dir, "policy-init", SFT_CODE, base=base["sha"], problems=problems["sha"], cfg=init_cfg,
                     seed=seed, launch=launch)
    return policy.sft_policy(base["path"], problems["path"], init_cfg, seed, out, launch)
