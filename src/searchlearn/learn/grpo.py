"""GRPO on the round's training problems: online RL against the verifier.

No search data is used: the policy samples `num_generations` completions per
problem, each is rewarded (correctness 1/0, a format reward, optionally a PRM's
aggregated step scores), and rewards are normalised within each problem's group
to give advantages. TRL's GRPOTrainer does the sampling and the clipped update.

Rollouts use plain transformers generation (CPU friendly). On a GPU, install
`vllm` and set `use_vllm: true`: `vllm_mode: colocate` runs the engine inside the
training process on the same GPU (size it with `vllm_gpu_memory_utilization`);
`vllm_mode: server` talks to `trl vllm-serve --model <policy_dir>` started apart.
"""

from __future__ import annotations

import tempfile
import time

from searchlearn.answers import extract_answer, is_correct
from searchlearn.formatting import STEP_SEPARATOR, build_prompt, is_answer_step, join_steps, split_steps
from searchlearn.learn import scaffold
from searchlearn.learn.base import LearnInputs, schema_defaults, with_defaults
from searchlearn.learn.lm_head import add_compact_lm_head
from searchlearn.problems.base import read_problems
from searchlearn.reward.base import StepScorer, aggregate


def grpo_defaults() -> dict:
    """The `learn.grpo` section's defaults. batch_size counts completions (TRL's
    convention), so the default 16 = 2 problems x 8 samples."""
    from searchlearn.config.schema import GRPOConfig

    return schema_defaults(GRPOConfig)


# --- rewards: TRL calls each with the completions plus every dataset column ----------------


def format_score(completion: str) -> float:
    """1.0: lines ending in a parseable `The answer is N.` with nothing after it;
    0.5: an answer line that does not parse, or text rambling on after it;
    0.0: no answer line at all. Graded so a policy that rarely solves anything
    still gets a signal for the format the verifier and the PRM read."""
    lines = [line.strip() for line in completion.split(STEP_SEPARATOR)]
    at = next((i for i, line in enumerate(lines) if is_answer_step(line)), None)
    if at is None:
        return 0.0
    if extract_answer(lines[at]) is None or any(lines[at + 1:]):
        return 0.5
    return 1.0


def correctness_reward(completions: list[str], answer: list[str], **_) -> list[float]:
    # Judge the completion up to its first answer line, as search does, so listing
    # several answers cannot win.
    return [float(is_correct(join_steps(split_steps(c)), a)) for c, a in zip(completions, answer)]


def format_reward(completions: list[str], **_) -> list[float]:
    return [format_score(c) for c in completions]


class PRMReward:
    """Process-reward shaping: a StepScorer's per-step scores, aggregated per completion."""

    __name__ = "prm_reward"  # TRL names the logged reward metrics after this

    def __init__(self, scorer: StepScorer, aggregation: str = "min"):
        self.scorer = scorer
        self.aggregation = aggregation

    def __call__(self, completions: list[str], question: list[str], **_) -> list[float]:
        step_lists = [split_steps(c) or [""] for c in completions]
        scores = self.scorer.score(question, step_lists)
        return [aggregate(s, self.aggregation) for s in scores]


def reward_functions(cfg: dict, scorer: StepScorer | None) -> tuple[list, list[float]]:
    """(reward functions, their weights) for GRPOConfig.reward_weights; zero weights are
    left out, and the PRM term only runs when a scorer was given."""
    funcs, weights = [correctness_reward], [cfg["correctness_weight"]]
    if cfg["format_weight"]:
        funcs.append(format_reward)
        weights.append(cfg["format_weight"])
    if cfg["prm_weight"] and scorer is not None:
        funcs.append(PRMReward(scorer, cfg["prm_aggregation"]))
        weights.append(cfg["prm_weight"])
    return funcs, weights


# --- learner ------------------------------------------------------------------------------


class GRPOLearner:
    """Learner "grpo". `cfg` is the whole `learn` section; this reads `cfg["grpo"]`."""

    name = "grpo"

    def __init__(self, scorer: StepScorer | None = None):
        self.scorer = scorer  # optional PRM for reward shaping (see prm_weight)

    def learn(self, inputs: LearnInputs, cfg: dict) -> dict:
        start = time.perf_counter()
        grpo = with_defaults(cfg.get("grpo"), grpo_defaults())
        check_batch(grpo)
        problems = read_problems(inputs.problems_path)
        funcs, weights = reward_functions(grpo, self.scorer)
        metrics = {"grpo.problems": len(problems), "grpo.reward_functions": len(funcs),
                   "grpo.prm_used": int(any(isinstance(f, PRMReward) for f in funcs))}
        sidecar = {"learner": "grpo", "grpo": grpo, "seed": inputs.seed, "base_model": inputs.policy_dir}
        if not problems:
            return scaffold.keep_unchanged(inputs.policy_dir, inputs.out_dir, sidecar, metrics)
        rows = [{"prompt": build_prompt(p.question), "answer": p.answer, "question": p.question}
                for p in problems]
        with tempfile.TemporaryDirectory(prefix="grpo-work-") as work:
            trainer, curve = _build_trainer(inputs, grpo, rows, funcs, weights, work)
            metrics.update(scaffold.fit(trainer, curve, start, tokens=lambda: _tokens(trainer.state.log_history)))
            metrics.update(summarize_grpo_logs(trainer.state.log_history))
            metrics["grpo.generated_tokens_est"] = generated_tokens(metrics, trainer.state.global_step, grpo,
                                                                    trainer.accelerator.num_processes)
            scaffold.save(trainer, inputs.out_dir, sidecar, metrics)
        return metrics


def _tokens(log_history: list[dict]) -> int:
    """Prompt + completion tokens the updates ran on: TRL's running `num_tokens`."""
    counts = [row["num_tokens"] for row in log_history if "num_tokens" in row]
    return int(counts[-1]) if counts else 0


def generated_tokens(metrics: dict, steps: int, grpo: dict, processes: int) -> int:
    """Rollout tokens generated, estimated from TRL's mean completion length: each
    generation batch feeds `num_iterations` optimizer steps of batch_size x grad_accum
    completions per process (TRL does not log a token total for completions alone)."""
    per_step = grpo["train"]["batch_size"] * grpo["train"]["grad_accum"] * processes
    return round(metrics.get("grpo.completion_length_mean", 0.0) * steps * per_step / grpo["num_iterations"])


def check_batch(grpo: dict) -> None:
    """Fail before any model loads: every optimizer step must hold whole problem groups."""
    per_step = grpo["train"]["batch_size"] * grpo["train"]["grad_accum"]
    if grpo["num_generations"] < 2 or per_step % grpo["num_generations"]:
        raise ValueError(
            f"grpo: train.batch_size * train.grad_accum ({per_step}) must be a multiple of "
            f"num_generations ({grpo['num_generations']}), which must be >= 2"
        )


def _build_trainer(inputs: LearnInputs, grpo: dict, rows: list[dict], funcs: list, weights: list[float],
                   work: str):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    scaffold.configure_cpu()
    # The KL anchor (beta > 0) is the round's starting policy: TRL rebuilds it from
    # the policy's path, so inputs.reference_dir is not used here.
    train = grpo["train"]
    model, tokenizer = scaffold.load_causal_lm(inputs.policy_dir), scaffold.load_tokenizer(inputs.policy_dir)
    args = scaffold.training_arguments(
        GRPOConfig, train, work, inputs.seed, scaffold.planned_steps(len(rows) * grpo["num_generations"], train),
        num_generations=grpo["num_generations"],
        max_completion_length=grpo["max_completion_length"],
        temperature=grpo["temperature"],
        top_p=grpo["top_p"],
        beta=grpo["beta"],
        epsilon=grpo["epsilon"],
        loss_type=grpo["loss_type"],
        scale_rewards=grpo["scale_rewards"],
        num_iterations=grpo["num_iterations"],
        mask_truncated_completions=grpo["mask_truncated_completions"],
        reward_weights=weights,
        use_vllm=grpo["use_vllm"],
        vllm_mode=grpo["vllm_mode"],
        vllm_gpu_memory_utilization=grpo["vllm_gpu_memory_utilization"],
    )
    curve = scaffold.loss_curve()
    # GRPO keeps TRL's own sampler: it repeats each prompt num_generations times.
    trainer = GRPOTrainer(model=model, reward_funcs=funcs, args=args, train_dataset=Dataset.from_list(rows),
                          processing_class=tokenizer, callbacks=[curve])
    # The update scores completion tokens only (TRL's CPU path scores the prompt too).
    add_compact_lm_head(trainer.model, temperature=grpo["temperature"], outputs=("log_probs", "entropy"))
    if trainer.ref_model is not None:
        add_compact_lm_head(trainer.accelerator.unwrap_model(trainer.ref_model), temperature=grpo["temperature"])
    return trainer, curve


def summarize_grpo_logs(log_history: list[dict]) -> dict:
    """Curve ends (first/last logged step) and means of the per-step statistics TRL
    logs; each reward function's mean appears as e.g. `grpo.correctness_reward_last`."""
    out = {
        **scaffold.first_last(log_history, "reward", "grpo.reward_first", "grpo.reward_last"),
        **scaffold.first_last(log_history, "kl", "grpo.kl_first", "grpo.kl_last"),
    }
    func_keys = sorted({k for row in log_history for k in row if k.startswith("rewards/") and k.endswith("/mean")})
    for key in func_keys:
        name = key.split("/")[1]
        out.update(scaffold.first_last(log_history, key, f"grpo.{name}_first", f"grpo.{name}_last"))
    for key, name in [("reward_std", "reward_std_mean"), ("frac_reward_zero_std", "frac_reward_zero_std_mean"),
                      ("completions/mean_length", "completion_length_mean"), ("kl", "kl_mean")]:
        values = [row[key] for row in log_history if row.get(key) is not None]
        if values:
            out[f"grpo.{name}"] = sum(values) / len(values)
    return out
