"""A tiny Llama-config model and a byte-level BPE tokenizer trained by the project.

Used by tests and the `tiny` experiment so the whole loop (SFT, search, PRM, DPO,
GRPO) runs in about a minute on 2 CPU cores with a model we build from scratch,
never downloaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

PAD, BOS, EOS = "<|pad|>", "<|bos|>", "<|eos|>"


def train_tokenizer(corpus: Iterable[str], vocab_size: int):
    """Byte-level BPE, so any text (including hostile model output) round-trips."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, BOS, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD, padding_side="left"
    )


def build_tiny_model(out_dir: str | Path, corpus: Iterable[str], shape: dict, seed: int = 0) -> Path:
    """Write a randomly initialised tiny Llama + its tokenizer to `out_dir` (atomically).

    `shape` holds the fields of config.schema.TinyModelConfig.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from searchlearn.artifacts import atomic_dir

    tokenizer = train_tokenizer(corpus, shape["vocab_size"])
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=shape["hidden_size"],
        intermediate_size=shape["intermediate_size"],
        num_hidden_layers=shape["num_layers"],
        num_attention_heads=shape["num_heads"],
        num_key_value_heads=shape["num_heads"],
        max_position_embeddings=shape["max_position_embeddings"],
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        model.generation_config.save_pretrained(tmp)
    return Path(out_dir)
