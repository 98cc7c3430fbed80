"""Label and reward-model quality (reward/quality.py) and the implicit PRM's step
values (reward/implicit.py), on hand-made numbers."""

from __future__ import annotations

import math

import pytest

from searchlearn.reward.quality import agreement, label_agreement, rank_auc, score_metrics, stratified_auc


def row(labels, oracle=None, **extra) -> dict:
    return {"question": "q", "steps": [f"s{j}" for j in range(len(labels))], "labels": labels,
            "problem_id": "p", "source": "t", **({"oracle": oracle} if oracle is not None else {}), **extra}


def test_agreement_on_hand_made_pairs():
    got = agreement([(0.9, True), (0.6, False), (0.2, False), (0.5, True)], "x_")
    # AUC: right [.9, .5] vs wrong [.6, .2]: .5 loses to .6, 3 of 4 pairs.
    assert got == pytest.approx({"x_steps": 4, "x_agreement": 3 / 4, "x_auc": 3 / 4,
                                 "x_mae": (0.1 + 0.6 + 0.2 + 0.5) / 4, "x_positive_rate": 0.5})
    assert agreement([], "x_") == {}


def test_label_agreement_skips_rows_without_an_oracle():
    rows = [row([1.0, 0.25], [1, 0]), row([0.0, 0.0]), row([0.75, 0.5], [0, 0])]
    got = label_agreement(rows)
    assert got["oracle_steps"] == 4 and got["oracle_agreement"] == pytest.approx(2 / 4)
    assert got["oracle_auc"] == pytest.approx(1.0)  # the one right step outranks every wrong one
    assert math.isnan(label_agreement([row([0.5], [1])])["oracle_auc"])  # one class only


def test_score_metrics_per_step_and_per_outcome():
    rows = [row([1.0, 1.0], [1, 1]), row([0.0, 0.0], [1, 0]), row([1.0, 1.0])]
    scores = [[0.9, 0.8], [0.7, 0.1], [0.4, 0.6]]
    per_step = score_metrics(rows, scores, per_step=True)
    # Labels: 4 positives [.9, .8, .4, .6] vs 2 negatives [.7, .1]: 6 of 8 pairs.
    assert per_step["eval_steps"] == 6 and per_step["eval_auc"] == pytest.approx(6 / 8)
    assert per_step["eval_acc"] == pytest.approx(4 / 6)
    # Oracle (first two rows): right [.9, .8, .7] vs wrong [.1].
    assert per_step["eval_oracle_steps"] == 4 and per_step["eval_auc_oracle"] == 1.0
    assert per_step["eval_acc_oracle"] == 1.0
    outcome = score_metrics(rows, scores, per_step=False)
    # Outcomes at the last step: [.8, .6] right vs [.1] wrong; the oracle still every step.
    assert outcome["eval_steps"] == 3 and outcome["eval_auc"] == 1.0 and outcome["eval_positive_rate"] == 2 / 3
    assert outcome["eval_auc_oracle"] == per_step["eval_auc_oracle"]
    assert "eval_auc_oracle" not in score_metrics(rows[2:], scores[2:], per_step=True)


def test_implicit_step_values_sum_log_ratios_up_to_each_step_end():
    import torch

    from searchlearn.reward.implicit import solution_labels, step_values

    # Column t holds token t+1's log-ratio; the prompt (tokens 0..1) contributes 0.
    ratio = torch.tensor([[0.0, 1.0, -2.0, 0.5, 3.0],
                          [0.0, 0.0, 4.0, 0.0, 0.0]])
    values = step_values(ratio, [[2, 4, 5], [3, None]], beta=0.5)
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    assert values[0] == pytest.approx([sig(0.5 * 1.0), sig(0.5 * -0.5), sig(0.5 * 2.5)])
    assert values[1][0] == pytest.approx(sig(2.0)) and values[1][1] is None
    assert step_values(ratio, [[0]], beta=1.0) == [[None]]  # nothing predicted before token 0

    ids = torch.tensor([[5, 6, 7, 8], [5, 6, 7, 0]])
    assert solution_labels(ids, [4, 3], [2, 1]).tolist() == [[-100, -100, 7, 8], [-100, 6, 7, -100]]


def test_implicit_loss_is_bce_on_the_scaled_log_likelihood_ratio():
    import torch

    from searchlearn.reward.implicit_train import implicit_loss, step_logits

    # Two solutions, one target each (outcome rows); the second column is padding.
    policy, ref = torch.tensor([[-3.0, 7.0], [-10.0, 7.0]]), torch.tensor([[-5.0, 0.0], [-6.0, 0.0]])
    targets, mask = torch.tensor([[1.0, 1.0], [0.0, 1.0]]), torch.tensor([[True, False], [True, False]])
    ratio = {"reward": "log_ratio", "beta": 0.5}
    margin = lambda q, r, settings=ratio: step_logits(q, r, None, None, settings)  # noqa: E731
    got = implicit_loss(margin(policy, ref), targets, mask)
    # Margins β·(log πθ − log πref): +1.0 for a right solution, −2.0 for a wrong one; padding ignored.
    expected = -(math.log(1 / (1 + math.exp(-1.0))) + math.log(1 - 1 / (1 + math.exp(2.0)))) / 2
    assert got.item() == pytest.approx(expected, rel=1e-6)
    # At πθ = πref the loss is log 2 whatever the outcome: training starts from no preference.
    assert implicit_loss(margin(ref, ref), targets, mask).item() == pytest.approx(math.log(2))
    # Step targets: every unmasked step counts once, soft labels included.
    soft = implicit_loss(margin(torch.tensor([[0.0, 2.0]]), torch.zeros(1, 2), {**ratio, "beta": 1.0}),
                         torch.tensor([[0.5, 1.0]]), torch.tensor([[True, True]]))
    assert soft.item() == pytest.approx((math.log(2) + math.log(1 + math.exp(-2.0))) / 2, rel=1e-6)


def test_pairwise_term_ranks_a_problems_solutions_at_the_same_step_only():
    import torch

    from searchlearn.reward.implicit_train import count_pairs, implicit_loss, pair_mask

    # Rows 0-1: one problem (group 0); row 2: another. Two steps each; row 1 wrong at step 1.
    targets = torch.tensor([[1.0, 1.0], [1.0, 0.0], [0.0, 0.0]])
    mask = torch.tensor([[True, True], [True, True], [True, True]])
    group = torch.tensor([0, 0, 1])
    pairs = pair_mask(targets, mask, group)
    # The one pair: row 0 above row 1 at step 1 (row 2 differs but is another problem's).
    assert pairs.nonzero().tolist() == [[0, 1, 1]]
    # Soft labels pair only when at least PAIR_MARGIN apart; a masked step never pairs.
    soft = torch.tensor([[0.75, 0.6], [0.25, 0.3]])
    assert pair_mask(soft, torch.tensor([[True, True], [True, False]]), torch.tensor([0, 0])).nonzero().tolist() \
        == [[0, 1, 0]]
    policy = torch.tensor([[0.0, 3.0], [0.0, 1.0], [0.0, -1.0]])  # the step logits (margins)
    bce = implicit_loss(policy, targets, mask)
    both = implicit_loss(policy, targets, mask, group=group, pairwise_weight=2.0)
    assert (both - bce).item() == pytest.approx(2.0 * math.log(1 + math.exp(-(3.0 - 1.0))), rel=1e-6)
    # What a problem's solutions share (one shift for the whole problem) leaves the
    # pair term unchanged, and BCE alone ignores which solution is which.
    shifted = policy + torch.tensor([[5.0], [5.0], [0.0]])
    pair_only = lambda q: (implicit_loss(q, targets, mask, group, 1.0)  # noqa: E731
                           - implicit_loss(q, targets, mask)).item()
    assert pair_only(shifted) == pytest.approx(pair_only(policy), rel=1e-6)
    assert implicit_loss(policy, targets, mask, group, 0.0).item() == pytest.approx(bce.item())
    examples = [{"targets": [1.0, 1.0]}, {"targets": [1.0, 0.0]}, {"targets": [0.0]}]
    assert count_pairs([examples, [{"targets": [1.0]}]]) == 3  # step 0: rows 0, 1 above row 2; step 1: 0 above 1
    assert count_pairs([examples[:1], examples[1:2]]) == 0


def test_step_logits_of_the_log_ratio_and_of_the_reference_free_confidence():
    """log_ratio: β·(q_θ − q_ref). confidence: the mean log-prob over the solution's
    tokens start..p_k, standardised by the initial model's center and scale, which
    confidence_stats takes from the initial model's sums over the training steps."""
    import torch

    from searchlearn.reward.implicit import confidence_values, step_values
    from searchlearn.reward.implicit_train import confidence_stats, step_logits

    prefix = torch.tensor([[-2.0, -3.0], [-6.0, -6.0]])  # Σ log πθ up to each step's end
    ref_q = torch.tensor([[-1.0, -4.0], [-6.0, -2.0]])
    positions, starts = torch.tensor([[5, 7], [9, 0]]), torch.tensor([4, 7])
    ratio = step_logits(prefix, ref_q, positions, starts, {"reward": "log_ratio", "beta": 0.5})
    assert ratio.tolist() == [[-0.5, 0.5], [0.0, -2.0]]
    conf = step_logits(prefix, ref_q, positions, starts, {"reward": "confidence", "beta": 0.5,
                                                         "center": -1.0, "scale": 0.5})
    # Row 0: 2 tokens to step 0 (4..5), 4 to step 1 (4..7); row 1: 3 tokens (7..9).
    assert conf[0].tolist() == pytest.approx([0.0, 0.5]) and conf[1, 0].item() == pytest.approx(-2.0)
    # The scorer reads the same values at the same positions (column p - 1 of the cumsum).
    logp = torch.zeros(2, 10)
    logp[0, 3:5], logp[0, 5:7] = -1.0, -0.5
    logp[1, 6:9] = -2.0
    got = confidence_values(logp, [[5, 7], [9, None]], [4, 7], center=-1.0, scale=0.5)
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    assert got[0] == pytest.approx([sig(0.0), sig(0.5)]) and got[1][0] == pytest.approx(sig(-2.0))
    assert got[1][1] is None
    assert step_values(logp, [[5, None]], beta=1.0)[0] == [pytest.approx(sig(-2.0)), None]
    examples = [{"start": 4, "positions": [5, 7]}, {"start": 7, "positions": [9]}]
    center, scale = confidence_stats(examples, [[-2.0, -3.0], [-6.0]])  # the means: -1.0, -0.75, -2.0
    assert center == pytest.approx(-1.25) and scale == pytest.approx(math.sqrt((0.0625 + 0.25 + 0.5625) / 3))
    assert confidence_stats([{"start": 4, "positions": [5]}], [[-2.0]]) == (-1.0, 1.0)  # no spread: scale 1


def test_examples_group_by_problem_only_for_the_pairwise_term():
    from searchlearn.reward.implicit_train import collate, group_by_problem

    rows = [{"problem_id": p, "input_ids": [1, 2, 3][: n], "start": 1, "positions": [n - 1], "targets": [1.0],
             "ref_q": [0.0]} for p, n in (("a", 2), ("b", 3), ("a", 3))]
    assert group_by_problem(rows, pairwise=False) == [[r] for r in rows]
    groups = group_by_problem(rows, pairwise=True)
    assert [[r["problem_id"] for r in g] for g in groups] == [["a", "a"], ["b"]]
    batch = collate(groups, pad_id=0)
    assert batch["group"].tolist() == [0, 0, 1] and batch["input_ids"].shape == (3, 3)


def test_pack_groups_bounds_every_batch_and_keeps_groups_that_fit_whole():
    from searchlearn.reward.implicit_train import collate_packs, pack_groups

    def group(problem, size, length=4):
        return [{"problem_id": problem, "row": f"{problem}{i}", "input_ids": [1] * (length + i % 3), "start": 1,
                 "positions": [length - 1], "targets": [float(i % 2)], "ref_q": [0.0]} for i in range(size)]

    # 16 samples of some problems beside the loop's 1-4: the mix that ran out of memory
    # when the batch was "batch_size solutions on average".
    groups = [group(f"d{k}", 16) for k in range(5)] + [group("big", 21)] + \
             [group(f"s{k}", 1 + k % 4, length=3 + k) for k in range(40)]
    packs = pack_groups(groups, batch_size=8, seed=3)
    rows = [e["row"] for pack in packs for g in pack for e in g]
    assert sorted(rows) == sorted(e["row"] for g in groups for e in g)  # every solution exactly once
    assert max(sum(len(g) for g in pack) for pack in packs) <= 8
    chunks = [g for pack in packs for g in pack]
    assert all(len({e["problem_id"] for e in g}) == 1 for g in chunks)  # a chunk holds one problem
    for k in range(40):  # a group that fits a batch stays whole
        assert sum(1 for g in chunks if g[0]["problem_id"] == f"s{k}") == 1
    assert sorted(len(g) for g in chunks if g[0]["problem_id"] == "big") == [7, 7, 7]  # fewest near-equal chunks
    assert sorted(len(g) for g in chunks if g[0]["problem_id"] == "d0") == [8, 8]
    assert len(packs) <= 1.25 * len(rows) / 8 + 1  # first fit leaves little room empty
    assert pack_groups(groups, 8, seed=3) == packs and pack_groups(groups, 8, seed=4) != packs
    batch = collate_packs([packs[0]], pad_id=0)
    assert batch["input_ids"].shape[0] == sum(len(g) for g in packs[0])
    assert batch["group"].tolist() == [i for i, g in enumerate(packs[0]) for _ in g]


def test_prefix_sums_read_the_log_probs_up_to_each_step_end():
    import torch

    from searchlearn.reward.implicit_train import prefix_sums

    # Column t holds token t+1's log-prob; a step ending at token p sums columns 0..p-1.
    log_probs = torch.tensor([[0.0, -1.0, -2.0, -3.0, -4.0]])
    assert prefix_sums(log_probs, torch.tensor([[2, 5]])).tolist() == [[-1.0, -10.0]]


def test_stratified_auc_compares_only_inside_a_stratum():
    """A scorer that knows only which problem is easy ranks pooled pairs well and
    problem-internal pairs no better than chance: the stratified AUC says so."""
    easy = [(0.9, True), (0.9, True), (0.9, False)]  # an easy problem: high values, right or not
    hard = [(0.1, True), (0.1, False), (0.1, False)]
    pooled = rank_auc([v for v, _ in easy + hard], [t for _, t in easy + hard])
    assert pooled == pytest.approx((2 * (0.5 + 2) + 2 * 0.5) / 9)  # 2/3: the easy rights beat the hard wrongs
    found = stratified_auc([[easy], [hard]])
    assert found["auc"] == 0.5 and found["pairs"] == 2 * 1 + 1 * 2
    # One problem, two strata (step positions): 1 of the first stratum's pair, none of the second's.
    one = stratified_auc([[[(0.7, True), (0.2, False)], [(0.3, True), (0.6, False), (0.6, True)]]])
    assert one["auc"] == pytest.approx((1 + 0 + 0.5) / 3) and one["pairs"] == 3
    assert one["lo"] == one["hi"] == pytest.approx(one["auc"])  # every draw is the one problem
    # Strata without both classes add no pair; none at all gives NaN.
    assert math.isnan(stratified_auc([[[(0.5, True)], [(0.4, False)]]])["auc"])


def test_stratified_auc_interval_narrows_with_more_problems():
    import random

    rng = random.Random(0)

    def problem():  # right values ~ N(0.6, 0.2), wrong ~ N(0.4, 0.2): AUC ~ 0.76
        return [[(rng.gauss(0.6, 0.2), True) for _ in range(4)] + [(rng.gauss(0.4, 0.2), False) for _ in range(4)]]

    few, many = stratified_auc([problem() for _ in range(20)]), stratified_auc([problem() for _ in range(400)])
    assert few["lo"] < few["auc"] < few["hi"] and many["lo"] < many["auc"] < many["hi"]
    assert many["hi"] - many["lo"] < (few["hi"] - few["lo"]) / 2
    assert 0.7 < many["auc"] < 0.82
