"""The labelled-step dataset format, and where step labels sit in token space."""

from __future__ import annotations

import json
import math

import pytest

from searchlearn.formatting import build_prompt, join_steps
from searchlearn.problems.base import DatasetFormatError
from searchlearn.reward.labels import read_labelled_steps, write_labelled_steps
from searchlearn.reward.prm import fill_missing, solution_text, step_end_positions
from searchlearn.reward.prm_train import IGNORE, build_examples, collate, label_pairs, masked_bce
from searchlearn.reward.quality import clustered_auc_interval, paired_auc_difference, rank_auc

GOOD_ROW = {"question": "What is 3 + 4?", "steps": ["3 + 4 = 7.", "The answer is 7."], "labels": [1.0, 1.0],
            "problem_id": "p1", "source": "mc_soft"}
STEPS = ["3 + 4 = 7.", "Then 7 + 1 = 8.", "The answer is 8."]


# ---- reader / writer -----------------------------------------------------------------


def _bad(**changes) -> str:
    row = {**GOOD_ROW, **changes}
    return json.dumps({k: v for k, v in row.items() if v is not _DROP})


_DROP = object()


@pytest.mark.parametrize(
    "line, reason",
    [
        ('{"question": "x", ', "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        (_bad(labels=_DROP), "missing key"),
        (_bad(source=_DROP), "missing key"),
        (_bad(labels=[1.0]), "2 steps but 1 labels"),
        (_bad(labels=[1.0, 1.5]), "outside [0, 1]"),
        (_bad(labels=[-0.1, 1.0]), "outside [0, 1]"),
        (_bad(labels=["0.5", 1.0]), "not a number"),
        (_bad(labels=[True, 1.0]), "not a number"),
        (_bad(labels=None), "labels"),
        ('{"question": "q", "steps": ["a"], "labels": [NaN], "problem_id": "p", "source": "s"}', "outside [0, 1]"),
        (_bad(steps=[], labels=[]), "non-empty"),
        (_bad(steps=["ok.", "  "]), "step 1 is empty"),
        (_bad(question=3), "must be strings"),
        (_bad(oracle=[1.0]), "an oracle of 1"),
        (_bad(oracle=[1.0, 0.5]), "must be 0 or 1"),
        (_bad(oracle=[True, 1]), "must be 0 or 1"),
        (_bad(oracle="yes"), "no list"),
    ],
)
def test_reader_names_file_and_line_for_each_malformed_case(tmp_path, line, reason):
    path = tmp_path / "labels.jsonl"
    path.write_text(json.dumps(GOOD_ROW) + "\n" + line + "\n")
    with pytest.raises(DatasetFormatError) as err:
        read_labelled_steps(path)
    assert f"{path}:2:" in str(err.value)
    assert reason in str(err.value)


def test_round_trip_accepts_any_source_and_normalises(tmp_path):
    rows = [GOOD_ROW, {**GOOD_ROW, "labels": [0, 1], "problem_id": 7, "source": "mcts", "visits": [3, 1],
                       "oracle": [1, 0]}]
    path = write_labelled_steps(tmp_path / "d" / "labels.jsonl", rows)
    back = read_labelled_steps(path)
    assert back[0] == GOOD_ROW
    assert back[1]["labels"] == [0.0, 1.0] and back[1]["problem_id"] == "7"
    assert back[1]["source"] == "mcts" and back[1]["visits"] == [3, 1]  # extra keys survive
    assert back[1]["oracle"] == [1.0, 0.0]


def test_writer_validates_before_writing(tmp_path):
    path = tmp_path / "labels.jsonl"
    with pytest.raises(ValueError, match="row 1 is invalid"):
        write_labelled_steps(path, [GOOD_ROW, {**GOOD_ROW, "labels": [2.0, 1.0]}])
    assert not path.exists() and not list(tmp_path.iterdir())


# ---- step-end positions on hand-made offsets -------------------------------------------


def test_solution_text_matches_the_policy_format():
    text, spans = solution_text("What is 3 + 4?", [" 3 + 4 = 7. "] + STEPS[1:])
    assert text == build_prompt("What is 3 + 4?") + join_steps(STEPS)
    assert [text[a:b] for a, b in spans] == [s + "\n" for s in STEPS]


def test_positions_separate_newline_token():
    # "ab.\n" then "cd.\n": tokens  ab | . | \n | cd | . | \n
    offsets = [(0, 2), (2, 3), (3, 4), (4, 6), (6, 7), (7, 8)]
    assert step_end_positions(offsets, [(0, 4), (4, 8)]) == [2, 5]


def test_positions_merged_period_newline_token():
    # tokens  ab | .\n | cd | .\n   (Llama-3/Qwen-style pre-tokenizers)
    offsets = [(0, 2), (2, 4), (4, 6), (6, 8)]
    assert step_end_positions(offsets, [(0, 4), (4, 8)]) == [1, 3]


def test_positions_newline_merged_into_next_step_uses_the_token_before():
    # tokens  ab. | \ncd | .\n : the "\ncd" token already reads step 2, so step 1's
    # label goes on "ab." (ends inside step 1), never on a token that sees step 2.
    offsets = [(0, 3), (3, 6), (6, 8)]
    assert step_end_positions(offsets, [(0, 4), (4, 8)]) == [0, 2]


def test_positions_skip_special_tokens_and_missing_steps():
    # BOS (0, 0) | prompt | one token swallowing step 1 and part of step 2 | rest
    offsets = [(0, 0), (0, 5), (5, 11), (11, 13)]
    assert step_end_positions(offsets, [(5, 9), (9, 13)]) == [None, 3]
    assert fill_missing([None, 0.8, None]) == [0.5, 0.8, 0.8]


# ---- step-end positions with real tokenizers ---------------------------------------------

LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def _corpus() -> list[str]:
    def steps(a, b):
        return [f"{a} + {b} = {a + b}.", f"Then {a + b} + 1 = {a + b + 1}.", f"The answer is {a + b + 1}."]

    return [build_prompt(f"What is {a} + {b}?") + join_steps(steps(a, b)) for a in range(10) for b in range(10)]


@pytest.fixture(scope="module")
def tiny_tokenizer():
    from searchlearn.models.tiny import train_tokenizer

    return train_tokenizer(_corpus(), vocab_size=384)


@pytest.fixture(scope="module")
def merged_tokenizer():
    """A byte-level BPE with a Llama-3-style split, where ".\\n" is one pre-token and
    (trained on this corpus) one token."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<pad>", "<eos>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(_corpus(), trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>")


def _label_tokens(tokenizer, steps=STEPS, max_length=512):
    examples, counts = build_examples(tokenizer, [{**GOOD_ROW, "steps": steps, "labels": [0.9] * len(steps)}],
                                      max_length)
    ids, labels = examples[0]["input_ids"], examples[0]["labels"]
    return [tokenizer.decode([i]) for i, y in zip(ids, labels) if y != IGNORE], examples[0], counts


def test_tiny_tokenizer_labels_the_newline_token(tiny_tokenizer):
    tokens, example, _ = _label_tokens(tiny_tokenizer)
    assert tokens == ["\n", "\n", "\n"]
    # The sequence stops right after the last labelled token.
    assert example["labels"][-1] == pytest.approx(0.9) and len(example["input_ids"]) == len(example["labels"])


def test_merged_tokenizer_labels_the_period_newline_token(merged_tokenizer):
    tokens, _, _ = _label_tokens(merged_tokenizer)
    assert tokens == [".\n", ".\n", ".\n"]


def test_truncation_drops_late_steps_and_counts_them(tiny_tokenizer):
    full = len(tiny_tokenizer(build_prompt(GOOD_ROW["question"]) + join_steps(STEPS))["input_ids"])
    _, example, counts = _label_tokens(tiny_tokenizer, max_length=full - 1)
    assert sum(y != IGNORE for y in example["labels"]) == 2 and len(example["input_ids"]) <= full - 1
    assert counts["dropped_steps"] == 1 and counts["dropped_rows"] == 0
    _, counts = build_examples(tiny_tokenizer, [GOOD_ROW], max_length=5)
    assert counts == {"rows": 1, "examples": 0, "labels": 0, "dropped_steps": 2, "dropped_rows": 1}


def test_orm_target_keeps_only_the_last_label(tiny_tokenizer):
    row = {**GOOD_ROW, "steps": STEPS, "labels": [0.0, 0.0, 1.0]}
    (example,), counts = build_examples(tiny_tokenizer, [row], 512, target="orm")
    kept = [(i, y) for i, y in enumerate(example["labels"]) if y != IGNORE]
    assert kept == [(len(example["input_ids"]) - 1, 1.0)] and counts["labels"] == 1
    with pytest.raises(ValueError, match="target"):
        build_examples(tiny_tokenizer, [row], 512, target="value")


def test_verifier_target_labels_every_solution_token_with_the_outcome(tiny_tokenizer):
    from searchlearn.reward.prm import encode_with_starts

    row = {**GOOD_ROW, "steps": STEPS, "labels": [0.0, 0.0, 0.0]}
    (example,), counts = build_examples(tiny_tokenizer, [row], 512, target="verifier")
    [(ids, positions, start)] = encode_with_starts(tiny_tokenizer, [row["question"]], [STEPS], 512)
    kept = [i for i, y in enumerate(example["labels"]) if y != IGNORE]
    assert kept == list(range(start, positions[-1] + 1)) and counts["labels"] == len(kept)
    assert all(example["labels"][i] == 0.0 for i in kept)
    # The first labelled token is the solution's first: everything before it decodes to the prompt.
    assert tiny_tokenizer.decode(ids[:start]) .rstrip() == build_prompt(row["question"]).rstrip()
    assert tiny_tokenizer.decode(ids[start:positions[0] + 1]).strip() == STEPS[0]


def test_label_pairs_per_target_on_hand_made_positions():
    labels, positions = [0.5, 1.0, 1.0], [4, 7, 9]
    assert label_pairs(labels, positions, 2, "prm") == [(4, 0.5), (7, 1.0), (9, 1.0)]
    assert label_pairs(labels, positions, 2, "orm") == [(9, 1.0)]
    assert label_pairs(labels, positions, 2, "verifier") == [(t, 1.0) for t in range(2, 10)]
    assert label_pairs(labels, [4, None, None], 2, "verifier") == []  # the outcome needs the whole solution
    assert label_pairs(labels, [4, None, 9], 2, "prm") == [(4, 0.5), (9, 1.0)]


# ---- batching and loss ---------------------------------------------------------------------


def test_collate_pads_right_and_masks_labels():
    batch = collate([{"input_ids": [5, 6, 7], "labels": [IGNORE, IGNORE, 1.0]},
                     {"input_ids": [8], "labels": [0.25]}], pad_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].tolist() == [[IGNORE, IGNORE, 1.0], [0.25, IGNORE, IGNORE]]


def test_collate_pads_to_a_multiple_of_the_bucket_and_never_cuts():
    rows = [{"input_ids": list(range(1, 18)), "labels": [IGNORE] * 16 + [1.0]}, {"input_ids": [8], "labels": [0.25]}]
    batch = collate(rows, pad_id=0, multiple=16)
    assert batch["input_ids"].shape == (2, 32)  # 17 tokens round up to 32, not down to 16
    assert batch["input_ids"][0, :17].tolist() == rows[0]["input_ids"]
    assert batch["attention_mask"].sum(-1).tolist() == [17, 1]
    assert (batch["labels"][:, 17:] == IGNORE).all()
    assert collate(rows[1:], pad_id=0, multiple=16)["input_ids"].shape == (1, 16)
    assert collate(rows, pad_id=0, multiple=1)["input_ids"].shape == (2, 17)


def test_masked_bce_ignores_unlabelled_positions():
    import torch

    logits = torch.tensor([[0.0, 50.0, 2.0], [-1.0, -30.0, 9.0]])
    labels = torch.tensor([[1.0, IGNORE, 0.25], [0.0, IGNORE, IGNORE]])
    expected = -(math.log(0.5) + 0.25 * math.log(torch.sigmoid(torch.tensor(2.0)).item())
                 + 0.75 * math.log(1 - torch.sigmoid(torch.tensor(2.0)).item())
                 + math.log(1 - torch.sigmoid(torch.tensor(-1.0)).item())) / 3
    assert masked_bce(logits, labels).item() == pytest.approx(expected, rel=1e-5)


def test_rank_auc_on_hand_made_numbers():
    assert rank_auc([0.1, 0.4, 0.35, 0.8], [False, False, True, True]) == pytest.approx(0.75)
    assert rank_auc([0.5, 0.5, 0.5], [True, False, True]) == pytest.approx(0.5)  # ties count half
    assert rank_auc([0.9, 0.1], [True, False]) == 1.0
    assert math.isnan(rank_auc([0.3, 0.4], [True, True]))


def test_clustered_auc_interval_resamples_whole_groups():
    import random

    rng = random.Random(1)

    def group(size, shift):  # a problem's steps: right ones score `shift` higher on average
        return [(round(rng.gauss(0.5 + (shift if t else 0), 0.2), 2), t) for t in (rng.random() < 0.4
                                                                                  for _ in range(size))]

    groups = [group(20, 0.15) for _ in range(60)]
    point = rank_auc([v for g in groups for v, _ in g], [t for g in groups for _, t in g])
    lo, hi = clustered_auc_interval(groups)
    assert lo < point < hi and 0.02 < hi - lo < 0.2
    # Four times the problems: about half the width.
    lo4, hi4 = clustered_auc_interval(groups + [group(20, 0.15) for _ in range(180)])
    assert 0.3 < (hi4 - lo4) / (hi - lo) < 0.75
    # Perfectly separated in every group: every draw is 1.
    assert clustered_auc_interval([[(0.9, True), (0.1, False)]] * 5) == (1.0, 1.0)
    # Groups are the unit: when a problem's steps share an offset (an easy problem
    # scores high throughout), its steps are not independent evidence, and the interval
    # is wider than one that treats every step as its own problem.
    def shared(size):
        offset, rate = rng.gauss(0, 0.3), rng.random()
        return [(offset + rng.gauss(0.1 if t else 0, 0.1), t) for t in (rng.random() < rate for _ in range(size))]

    lumpy = [shared(20) for _ in range(60)]
    lo_g, hi_g = clustered_auc_interval(lumpy)
    lo_s, hi_s = clustered_auc_interval([[pair] for g in lumpy for pair in g])
    assert hi_g - lo_g > 1.5 * (hi_s - lo_s)


def test_paired_auc_difference_cancels_what_two_models_share():
    """Two models that share most of their error (the same hard steps) and differ by a
    little signal: the paired interval of AUC(a) - AUC(b) excludes 0 although their
    separate intervals overlap, and a model against itself differs by exactly 0."""
    import random

    rng = random.Random(2)

    def problem(size):
        rows = []
        for truth in (rng.random() < 0.4 for _ in range(size)):
            shared = rng.gauss(0.5 + (0.1 if truth else 0), 0.2)  # what both models see
            rows.append((shared + (0.02 if truth else 0) + rng.gauss(0, 0.02), shared + rng.gauss(0, 0.02), truth))
        return rows

    groups = [problem(20) for _ in range(60)]
    a = [[(va, t) for va, _, t in g] for g in groups]
    b = [[(vb, t) for _, vb, t in g] for g in groups]
    point, lo, hi = paired_auc_difference(groups)
    auc_a, auc_b = (rank_auc([v for g in m for v, _ in g], [t for g in m for _, t in g]) for m in (a, b))
    assert point == pytest.approx(auc_a - auc_b) and 0 < lo < point < hi
    (lo_a, hi_a), (lo_b, hi_b) = clustered_auc_interval(a), clustered_auc_interval(b)
    assert lo_a < hi_b  # the separate intervals overlap ...
    assert hi - lo < 0.5 * min(hi_a - lo_a, hi_b - lo_b)  # ... the paired one is far narrower
    same = [[(va, va, t) for va, _, t in g] for g in groups]
    assert paired_auc_difference(same) == (0.0, 0.0, 0.0)
    assert all(math.isnan(x) for x in paired_auc_difference([[(0.1, 0.2, True), (0.3, 0.1, True)]]))
