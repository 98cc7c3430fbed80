"""The run's report, its plots and the champion's description, on hand-made histories."""

from __future__ import annotations

import pytest

from searchlearn.champion import best_round, champion_description, champion_tags, why_it_won
from searchlearn.reporting import (accuracies, accuracy_figures, eval_series, interval, round_description,
                                   run_report, summary_markdown)


def _row(r: int, greedy: float, handwritten: float | None = None, **extra) -> dict:
    row = {"round": r, "eval.greedy_acc": greedy, "eval.greedy_acc_se": 0.05, "eval.maj_at_4": greedy + 0.01,
           "eval.maj_at_4_se": 0.05, "eval.pass_at_4": greedy + 0.1, "eval.pass_at_4_se": 0.06,
           "eval.problems": 100, "tokens.cumulative": 1000 * (r + 1), **extra}
    if handwritten is not None:
        row.update({"eval.handwritten.greedy_acc": handwritten, "eval.handwritten.greedy_acc_se": 0.04})
    return row


HISTORY = [_row(0, 0.12, 0.05), _row(1, 0.16, 0.06, **{"search.algorithm": "best_of_n", "search.problems": 96,
                                                       "search.solved": 0.2, "search.any_correct": 0.3,
                                                       "search.tokens": 5000}),
           _row(2, 0.16, 0.04), _row(3, 0.10, 0.07)]


def test_the_champion_is_the_best_greedy_round_and_ties_go_to_the_later_one():
    assert best_round(HISTORY) == 2
    assert best_round(HISTORY[:2]) == 1


def test_intervals_are_95_percent_and_cover_every_eval_set():
    assert interval(HISTORY[0], "eval.greedy_acc") == "0.120 ± 0.098"
    assert interval({"x": 0.5}, "x") == "0.500"
    assert accuracies(HISTORY, HISTORY[1]) == {"greedy_acc": "0.160 ± 0.098", "maj_at_4": "0.170 ± 0.098",
                                               "pass_at_4": "0.260 ± 0.118", "handwritten.greedy_acc": "0.060 ± 0.078"}


def test_champion_tags_and_description_name_the_round_the_methods_and_why():
    tags = champion_tags(HISTORY, 1, experiment="quickstart", search="mcts", learn="rft", parent_run_id="abc")
    assert tags["searchlearn.round"] == "1" and tags["searchlearn.parent_run_id"] == "abc"
    assert tags["searchlearn.search_algorithm"] == "best_of_n"  # what ran that round, not the configured mcts
    assert tags["searchlearn.greedy_acc"] == "0.160 ± 0.098" and tags["searchlearn.eval_problems"] == "100"
    text = champion_description(HISTORY, 2, experiment="quickstart", search="best_of_n", learn="rft", run_name="r")
    assert text.startswith("**Round 2** policy") and "learn `rft`" in text
    assert why_it_won(HISTORY, 2).endswith("r0 0.120, r1 0.160, r2 0.160, r3 0.100.")
    assert "SFT-initialised" in champion_description(HISTORY[:1], 0, experiment="q", search="s", learn="l",
                                                     run_name="r")


def test_the_report_holds_the_table_the_champion_and_the_plots():
    table = summary_markdown(HISTORY)
    assert table.splitlines()[0].startswith("| round | greedy | maj@4 | pass@4 | hand-written |")
    assert len(table.splitlines()) == 2 + len(HISTORY)
    report = run_report("tiny", HISTORY, champion="**Round 2**", links=[("MLflow run", "http://x")],
                        images=[("accuracy", "get-artifact?path=a.png")])
    assert "- MLflow run: http://x" in report and "#### Champion\n\n**Round 2**" in report
    assert "![accuracy](get-artifact?path=a.png)" in report


def test_a_round_description_says_what_the_round_did():
    text = round_description(HISTORY[1], ["search/problems.json", "eval/problems.json"])
    assert "search (`best_of_n`): 96 problems, solved 0.200" in text
    assert "greedy_acc: 0.160 ± 0.098 (95 % interval, 100 problems held out)" in text
    assert "`search/problems.json`, `eval/problems.json` (k = 4)" in text


def test_plots_fit_the_data_mark_the_champion_and_draw_every_eval_set():
    assert [label for _, label in eval_series(HISTORY)] == ["held-out greedy", "held-out maj@4", "held-out pass@4",
                                                           "handwritten greedy"]
    figs = accuracy_figures(HISTORY, champion=2)
    ax = figs["accuracy_per_round"].axes[0]
    low, high = ax.get_ylim()
    assert low > -0.05 and high < 0.5  # fitted to 0.04..0.36, not 0..1
    ticks = [t for t in ax.get_xticks() if -0.5 <= t <= 3.5]
    assert ticks and all(float(t).is_integer() for t in ticks)
    legend = [t.get_text() for t in figs["accuracy_per_round"].legends[0].get_texts()]
    assert "champion" in legend and "handwritten greedy" in legend
    # Interval bars: one errorbar container per eval curve, cut at 0 below.
    assert len(ax.containers) == 4
    import matplotlib.pyplot as plt

    for fig in figs.values():
        plt.close(fig)


@pytest.mark.parametrize("value", [0.0, 1.0])
def test_accuracy_intervals_stay_inside_0_and_1(value):
    from searchlearn.reporting import _interval_bars

    [below], [above] = _interval_bars([{"a": value, "a_se": 0.2}], "a")
    assert value - below >= 0.0 and value + above <= 1.0


def test_the_table_leaves_out_columns_no_round_has():
    greedy_only = [{k: v for k, v in row.items() if "_at_" not in k} for row in HISTORY]
    header = summary_markdown(greedy_only).splitlines()[0]
    assert header.startswith("| round | greedy | hand-written | search solved |")
    assert "maj@" not in header and "None" not in header and "AUC" not in header


def test_the_table_has_a_column_per_trained_reward_model():
    """The run's reward models, whichever kinds (the default implicit_step and a prm
    compared beside it here), each get their held-out step AUC column."""
    rows = [{"round": 0, "eval.greedy_acc": 0.3},
            {"round": 1, "eval.greedy_acc": 0.31, "implicit_step.eval_auc": 0.634, "prm.eval_auc": 0.686,
             "implicit_step.eval_auc_oracle": 0.733, "labels.oracle_auc": 0.8}]
    header, _, round0, round1 = summary_markdown(rows).splitlines()[:4]
    assert header == "| round | greedy | implicit_step AUC | prm AUC |"
    assert round0.endswith("| - | - |") and round1.endswith("| 0.634 | 0.686 |")
    assert "reward model `implicit_step`: held-out step AUC 0.634" in round_description(rows[1], [])
