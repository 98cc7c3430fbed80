"""Prefect tasks: thin, cached wrappers around searchlearn.stages.

They take and return paths, config sections as plain dicts, and artifact
references (`{"path", "sha", **metrics}`), so Prefect can hash inputs for its
cross-run cache. Models and tensors never cross a task boundary.
"""

from tasks.data import prepare_problems
from tasks.evaluate import evaluate_policy, evaluate_scaling
from tasks.learn import learn_policy
from tasks.policy import init_base_model, sft_on_demos
from tasks.reward import evaluate_reranking, label_steps, train_reward_model
from tasks.search import search_for_data

__all__ = ["evaluate_policy", "evaluate_reranking", "evaluate_scaling", "init_base_model", "label_steps", "learn_policy",
           "prepare_problems", "search_for_data", "sft_on_demos", "train_reward_model"]
