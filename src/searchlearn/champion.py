"""Which round's policy becomes the champion, and how it describes itself: the
tags and description its logged model and registered version carry, and the
champion section of the run report. Plain data in, strings out (no MLflow here)."""

from __future__ import annotations

from typing import Sequence

from searchlearn.reporting import accuracies

SELECTED_BY = "eval.greedy_acc"


def best_round(history: Sequence[dict]) -> int:
    """The round whose policy becomes the champion: best held-out greedy accuracy,
    ties -> the later round (it had more search and learning behind it)."""
    return max(history, key=lambda row: (row[SELECTED_BY], row["round"]))["round"]


def champion_tags(history: Sequence[dict], best: int, *, experiment: str, search: str, learn: str,
                  parent_run_id: str) -> dict[str, str]:
    """Tags for the champion's logged model and registered version."""
    row = _row(history, best)
    search = row.get("search.algorithm") or search  # what ran that round (round 1 may fall back to best_of_n)
    tags = {"searchlearn.round": str(best), "searchlearn.experiment": experiment,
            "searchlearn.search_algorithm": search if best else "none (round 0: SFT init)",
            "searchlearn.learn_algorithm": learn if best else "none (round 0: SFT init)",
            "searchlearn.parent_run_id": parent_run_id, "searchlearn.selected_by": SELECTED_BY,
            "searchlearn.eval_problems": str(row.get("eval.problems", "?"))}
    tags.update({f"searchlearn.{name}": text for name, text in accuracies(history, row).items()})
    return tags


def why_it_won(history: Sequence[dict], best: int) -> str:
    """One sentence: the selection rule and every round's score it beat."""
    scores = ", ".join(f"r{row['round']} {row[SELECTED_BY]:.3f}" for row in history)
    n = _row(history, best).get("eval.problems", "?")
    return (f"Round {best} has the best held-out greedy accuracy ({SELECTED_BY}, {n} problems; "
            f"ties go to the later round): {scores}.")


def champion_description(history: Sequence[dict], best: int, *, experiment: str, search: str, learn: str,
                         run_name: str) -> str:
    """Markdown for the logged model and the registered version's description."""
    row = _row(history, best)
    search = row.get("search.algorithm") or search
    method = (f"search `{search}`, learn `{learn}`" if best
              else "the SFT-initialised policy (no search or learning round yet)")
    lines = [f"**Round {best}** policy of experiment `{experiment}` (run `{run_name}`): {method}.", ""]
    lines += [f"- {name}: {text} (95 % interval)" for name, text in accuracies(history, row).items()]
    lines += ["", why_it_won(history, best)]
    return "\n".join(lines)


def _row(history: Sequence[dict], round_index: int) -> dict:
    return next(row for row in history if row["round"] == round_index)
