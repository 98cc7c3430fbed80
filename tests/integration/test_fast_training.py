"""The training scaffold on the tiny model: the compact LM head computes exactly the
full-logits loss, padding and prompts add nothing to it, bf16 training learns, and
PRM labels stay on step-end tokens under length-grouped batches."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from searchlearn.config.schema import TrainConfig
from searchlearn.learn.sft import train_sft


def cfg(**overrides) -> dict:
    return {**asdict(TrainConfig()), "learning_rate": 3e-3, "lr_scheduler": "constant", "warmup_ratio": 0.0,
            "batch_size": 8, **overrides}


def full_logits_logps(model, ids, mask, labels, temperature=1.0):
    """Reference: every position's logits, log-softmax, the labelled ones picked."""
    import torch

    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float() / temperature
    target = labels[:, 1:]
    keep = target != -100
    logp = torch.log_softmax(logits, -1).gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return logp * keep


@pytest.fixture()
def model_and_batch(tiny_model_dir, tiny_demos):
    import torch

    from searchlearn.learn import scaffold
    from searchlearn.reward.prm import pad_batch

    tok = scaffold.load_tokenizer(tiny_model_dir)
    model = scaffold.load_causal_lm(tiny_model_dir)
    seqs, labels = [], []
    for d in tiny_demos[:5]:
        p = tok(d["prompt"], add_special_tokens=False)["input_ids"]
        c = tok(d["completion"], add_special_tokens=False)["input_ids"]
        seqs.append(p + c)
        labels.append([-100] * len(p) + c)
    ids, mask = pad_batch(seqs, tok.pad_token_id)
    lab = torch.full(ids.shape, -100)
    for i, row in enumerate(labels):
        lab[i, :len(row)] = torch.tensor(row)
    return model, ids, mask, lab


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_compact_head_equals_full_logits_in_value_and_gradient(model_and_batch, temperature):
    import torch

    from searchlearn.learn.lm_head import add_compact_lm_head

    model, ids, mask, labels = model_and_batch
    ref = full_logits_logps(model, ids, mask, labels, temperature)
    ref_loss = -ref.sum() / (labels[:, 1:] != -100).sum()
    ref_loss.backward()
    ref_grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()

    add_compact_lm_head(model, temperature=temperature, outputs=("log_probs", "entropy", "is_top1"))
    out = model(input_ids=ids, attention_mask=mask, labels=labels, fused_lm_head=True)
    assert torch.allclose(out.log_probs, ref, atol=1e-5)
    assert out.loss.item() == pytest.approx(ref_loss.item(), rel=1e-5)
    out.loss.backward()
    for name, p in model.named_parameters():
        assert torch.allclose(p.grad, ref_grads[name], atol=1e-6, rtol=1e-4), name
    # Unlabelled positions (prompt, padding) carry nothing, and the plain forward is untouched.
    assert (out.log_probs[labels[:, 1:] == -100] == 0).all() and (out.entropy[labels[:, 1:] == -100] == 0).all()
    assert model(input_ids=ids, attention_mask=mask).logits.shape[-1] == model.config.vocab_size


def test_a_padded_batch_gives_the_loss_of_its_examples_one_at_a_time(model_and_batch):
    import torch

    from searchlearn.learn.lm_head import add_compact_lm_head

    model, ids, mask, labels = model_and_batch
    add_compact_lm_head(model)
    with torch.no_grad():
        batched = model(input_ids=ids, attention_mask=mask, labels=labels, fused_lm_head=True).log_probs.sum(-1)
        single = []
        for i in range(len(ids)):
            n = int(mask[i].sum())
            single.append(model(input_ids=ids[i:i + 1, :n], attention_mask=mask[i:i + 1, :n],
                                labels=labels[i:i + 1, :n], fused_lm_head=True).log_probs.sum())
        # More right padding (train.pad_to_multiple_of) changes nothing either.
        extra = 32 - ids.shape[1] % 32 + 32
        wider = model(input_ids=torch.nn.functional.pad(ids, (0, extra), value=int(ids[0, -1])),
                      attention_mask=torch.nn.functional.pad(mask, (0, extra)),
                      labels=torch.nn.functional.pad(labels, (0, extra), value=-100),
                      fused_lm_head=True).log_probs.sum(-1)
    assert mask.sum(-1).unique().numel() > 1  # the rows really differ in length
    assert torch.allclose(batched, torch.stack(single), atol=1e-4)
    assert torch.allclose(wider, batched, atol=1e-4)


def test_sft_trainer_loss_ignores_padding_and_prompt_tokens(tiny_model_dir, tiny_demos, tmp_path):
    """The trainer's own collated batch: its loss is the mean over completion tokens."""
    import torch

    from searchlearn.learn.sft import _build_trainer

    trainer, _ = _build_trainer(tiny_model_dir, tiny_demos[:8], cfg(precision="fp32"), str(tmp_path), 0)
    batch = next(iter(trainer.get_train_dataloader()))
    with torch.no_grad():
        loss = trainer.compute_loss(trainer.model, dict(batch))
        out = trainer.model(**batch, fused_lm_head=True)
    completion = (batch["labels"][:, 1:] != -100)
    assert int(out.label_mask.sum()) == int(completion.sum()) < int(batch["attention_mask"].sum())
    assert loss.item() == pytest.approx(-(out.log_probs.sum() / completion.sum()).item(), rel=1e-6)


@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_training_in_each_precision_lowers_the_loss_and_changes_every_weight(tiny_model_dir, tiny_demos,
                                                                             tmp_path, precision):
    from safetensors.torch import load_file

    metrics = train_sft(tiny_model_dir, tiny_demos, cfg(max_steps=12, precision=precision), str(tmp_path / "p"))
    assert metrics["train.bf16"] == (precision == "bf16")
    assert metrics["train.last_loss"] < 0.8 * metrics["train.first_loss"], metrics
    before, after = load_file(f"{tiny_model_dir}/model.safetensors"), load_file(tmp_path / "p" / "model.safetensors")
    assert all(not (before[k] == after[k]).all() for k in before)


def test_fit_frees_gradients_and_optimizer_state_but_keeps_the_trained_weights(tiny_model_dir, tiny_demos,
                                                                             tmp_path):
    """What only the optimizer loop needed is gone before evaluation and save."""
    import time

    from searchlearn.learn import scaffold
    from searchlearn.learn.sft import _build_trainer

    trainer, curve = _build_trainer(tiny_model_dir, tiny_demos[:16], cfg(max_steps=3), str(tmp_path), 0)
    start = [p.detach().clone() for p in trainer.model.parameters()]
    metrics = scaffold.fit(trainer, curve, time.perf_counter())
    assert metrics["train.steps"] == 3
    assert all(p.grad is None for p in trainer.model.parameters())
    assert len(trainer.optimizer.state) == 0
    assert any(not (a == p).all() for a, p in zip(start, trainer.model.parameters()))


def test_learning_rate_zero_changes_nothing(tiny_model_dir, tiny_demos, tmp_path):
    """The check above can fail: at learning rate 0 the weights stay put."""
    from safetensors.torch import load_file

    metrics = train_sft(tiny_model_dir, tiny_demos[:16], cfg(max_steps=2, learning_rate=0.0), str(tmp_path / "p"))
    assert metrics["train.steps"] == 2
    before, after = load_file(f"{tiny_model_dir}/model.safetensors"), load_file(tmp_path / "p" / "model.safetensors")
    assert all((before[k] == after[k]).all() for k in before)


def test_prm_labels_sit_on_step_end_tokens_in_length_grouped_batches(tiny_model_dir, tmp_path):
    from searchlearn.reward.prm import encode_solutions
    from searchlearn.reward.prm_train import IGNORE, _build_trainer, build_examples, load_for_training

    rows = [{"question": f"Start with {a}. Add {b}." + " Add 1." * extra,
             "steps": [f"{a} + {b} = {a + b}."] + [f"{a + b + i} + 1 = {a + b + i + 1}." for i in range(extra)]
             + [f"The answer is {a + b + extra}."],
             "labels": [0.25 * (k % 4) for k in range(extra + 2)], "problem_id": str(i), "source": "t"}
            for i, (a, b, extra) in enumerate((a, b, e) for a in range(2, 8) for b in (3, 5) for e in range(4))]
    model, tok, _ = load_for_training(tiny_model_dir)
    examples, _ = build_examples(tok, rows, 256)
    trainer, _ = _build_trainer(model, tok, examples, cfg(batch_size=8, max_steps=1, precision="fp32"), 0,
                                str(tmp_path))
    expected = {tuple(ids): [p for p in pos] for ids, pos in
                encode_solutions(tok, [r["question"] for r in rows], [r["steps"] for r in rows], 256)}
    seen = 0
    for batch in trainer.get_train_dataloader():
        for ids, mask, labels in zip(batch["input_ids"], batch["attention_mask"], batch["labels"]):
            n = int(mask.sum())
            positions = [t for t in range(len(labels)) if labels[t] != IGNORE]
            assert positions == expected[tuple(ids[:n].tolist())] and max(positions) == n - 1
            seen += 1
    assert seen == len(rows)
