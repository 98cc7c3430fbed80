"""Each reward-model kind (prm.kind) trained in the loop, guiding round 2's search and
compared beside the others in the reranking evaluation. Each variant runs twice: the
first run executes every stage, the second is fully Cached."""

from __future__ import annotations

import pytest

from flowkit import run_twice

pytestmark = pytest.mark.slow


# implicit_step, the default kind (confidence reward, Monte-Carlo labels), runs in
# test_variants.py; here every other kind guides the search or trains beside a guide.
@pytest.mark.parametrize("kind, others", [("orm", []), ("verifier", ["prm"]), ("prm", ["implicit"])])
def test_each_reward_model_kind_guides_the_search(prefect_server, tmp_path, kind, others):
    """prm.kind picks the reward model that round 2's beam search is guided by; the
    kinds in prm.compare_kinds train beside it and join the reranking comparison. Runs
    with a kind that learns step labels label them with the oracle (prm.labels=oracle:
    no rollouts)."""
    from searchlearn.reward.labels import STEP_LABEL_KINDS

    oracle = ["prm.labels=oracle"] if set(STEP_LABEL_KINDS) & {kind, *others} else []
    history, states = run_twice(tmp_path, "tiny_prm", f"prm.kind={kind}", f"prm.compare_kinds=[{','.join(others)}]",
                                *oracle)
    last = history[-1]
    assert {"label-steps", "train-reward-model", "evaluate-reranking"} <= set(states)
    assert history[2]["search.algorithm"] == "beam_search"  # guided by round 1's model of this kind
    for k in [kind, *others]:
        assert last[f"{k}.train.steps"] > 0 and last[f"{k}.init_kind"] == "warm_start"
        assert last[f"{k}.train.last_loss"] < last[f"{k}.train.first_loss"]
        assert (f"rerank.{k}.n4" if k == "orm" else f"rerank.{k}_min.n4") in last
    assert not any(k.endswith(".reward.scale") for k in last)  # no confidence reward here: no center/scale
    assert last["labels.problems_considered"] == 8 and 0 < last["labels.problems_labelled"] <= 8
    assert last["labels.outcome_rows"] > 0 and "labels.outcome_oracle_agreement" in last
    if oracle:  # the labels are the oracle's, and cost no rollout
        assert last["labels.oracle_agreement"] == 1.0 and last["labels.rollouts"] == 0
    else:  # no kind needs step labels: none are made
        assert last["labels.rows"] == 0
