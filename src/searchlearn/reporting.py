"""What a run reports: the per-round summary table (terminal, markdown), accuracies
with their intervals, the run and round reports shown in MLflow and Prefect, and the
plots. Plain data in, text and figures out."""

from __future__ import annotations

import io
from typing import Sequence

# (history key, column title, number format) in display order; missing keys show as "-".
# Counts have a format of their own: read back from MLflow, every metric is a float.
COLUMNS = [
    ("round", "round", ".0f"),
    ("eval.greedy_acc", "greedy", ".3f"),
    ("eval.maj_at_{k}", "maj@{k}", ".3f"),
    ("eval.pass_at_{k}", "pass@{k}", ".3f"),
    ("eval.handwritten.greedy_acc", "hand-written", ".3f"),
    ("search.solved", "search solved", ".3f"),
    ("learn.rft.examples", "train ex.", ".0f"),
    ("learn.train.last_loss", "train loss", ".3f"),
    ("{reward}.eval_auc", "{reward} AUC", ".3f"),  # one column per reward-model kind trained
    ("tokens.cumulative", "tokens (cum.)", ".0f"),
    ("seconds", "wall s (this run)", ".1f"),
]


def eval_k(history: Sequence[dict]) -> int | None:
    for row in history:
        for key in row:
            if key.startswith("eval.maj_at_"):
                return int(key.rsplit("_", 1)[1])
    return None


def reward_kinds(history: Sequence[dict]) -> list[str]:
    """The reward-model kinds trained in these rounds (`<kind>.eval_auc`: each kind's
    held-out step AUC), in the order first seen."""
    found = (key.rsplit(".", 1)[0] for row in history for key in row if key.endswith(".eval_auc"))
    return list(dict.fromkeys(kind for kind in found if "." not in kind))


def summary_rows(history: Sequence[dict]) -> list[dict]:
    """One dict of cells per round; a column no round has a value for (maj@k with
    eval.k=0, a reward model's AUC without one) is left out."""
    k = eval_k(history)
    columns = [(key.format(k=k, reward=kind), title.format(k=k, reward=kind), fmt) for key, title, fmt in COLUMNS
               if k is not None or "{k}" not in key
               for kind in (reward_kinds(history) if "{reward}" in key else [None])]
    columns = [c for c in columns if c[0] in ("round", "eval.greedy_acc") or any(c[0] in row for row in history)]
    return [{title: _cell(row.get(key), row.get(f"{key}_se"), fmt) for key, title, fmt in columns}
            for row in history]


def _cell(value, se=None, fmt: str = ".3f") -> str:
    """A number as shown in the table; an accuracy with its standard error."""
    if value is None:
        return "-"
    if se is not None:
        return f"{value:{fmt}}±{se:{fmt}}"
    return f"{value:{fmt}}" if isinstance(value, (int, float)) else str(value)


def summary_table(history: Sequence[dict], title: str = "search-and-learn summary"):
    from rich.table import Table

    rows = summary_rows(history)
    table = Table(title=title)
    for col in rows[0] if rows else []:
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(*r.values())
    return table


def render_summary(history: Sequence[dict], title: str = "search-and-learn summary", width: int = 160) -> str:
    """The summary table as plain text (for logs and the terminal)."""
    from rich.console import Console

    console = Console(width=width, record=True, file=io.StringIO())
    console.print(summary_table(history, title))
    return console.export_text()


def summary_markdown(history: Sequence[dict]) -> str:
    """The summary table as a markdown table (the run report, the Prefect artifact)."""
    rows = summary_rows(history)
    if not rows:
        return "(no rounds)"
    head = list(rows[0])
    lines = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    lines += ["| " + " | ".join(r[c] for c in head) + " |" for r in rows]
    return "\n".join(lines)


Z95 = 1.96  # a 95 % normal interval is the accuracy +- 1.96 standard errors


def interval(row: dict, key: str) -> str:
    """`0.250 ± 0.170` (95 % normal interval over problems), or the bare value
    for a metric logged without a standard error."""
    value, se = row[key], row.get(f"{key}_se")
    return f"{value:.3f}" if se is None else f"{value:.3f} ± {Z95 * se:.3f}"


def accuracies(history: Sequence[dict], row: dict) -> dict[str, str]:
    """{tag name: interval text} for the round's held-out greedy, maj@k and pass@k
    and each extra eval set's greedy accuracy."""
    k = eval_k(history)
    keys = ["eval.greedy_acc"] + ([f"eval.maj_at_{k}", f"eval.pass_at_{k}"] if k else [])
    keys += [key for key in row if key.startswith("eval.") and key.count(".") == 2 and key.endswith(".greedy_acc")]
    return {key.replace("eval.", "", 1): interval(row, key) for key in keys if key in row}


def round_description(row: dict, tables: Sequence[str]) -> str:
    """A round run's description: what the round did and how its policy scored."""
    r = row["round"]
    lines = [f"**Round {r}**" + (": the SFT-initialised policy." if r == 0 else "."), ""]
    if "search.problems" in row:
        lines.append(f"- search (`{row.get('search.algorithm', '?')}`): {row['search.problems']:.0f} problems, "
                     f"solved {row['search.solved']:.3f}, any candidate right {row['search.any_correct']:.3f}, "
                     f"{row['search.tokens']:.0f} tokens")
    if "learn.train.steps" in row:
        lines.append(f"- learn: {row.get('learn.train.examples', 0):.0f} examples, {row['learn.train.steps']:.0f} "
                     f"steps, loss {row.get('learn.train.first_loss', float('nan')):.3f} -> "
                     f"{row.get('learn.train.last_loss', float('nan')):.3f}")
    for kind in reward_kinds([row]):
        lines.append(f"- reward model `{kind}`: held-out step AUC {row[f'{kind}.eval_auc']:.3f}")
    k = eval_k([row])
    lines += [f"- {name}: {text} (95 % interval, {row.get('eval.problems', '?')} problems held out)"
              if name == "greedy_acc" else f"- {name}: {text}" for name, text in accuracies([row], row).items()]
    if tables:
        lines += ["", "Per-problem tables: " + ", ".join(f"`{t}`" for t in tables) + (f" (k = {k})" if k else "")]
    return "\n".join(lines)


def run_report(title: str, history: Sequence[dict], *, champion: str = "", links: Sequence[tuple[str, str]] = (),
               images: Sequence[tuple[str, str]] = ()) -> str:
    """A short markdown report of a run: links, the per-round table, the champion
    and the plots (`images`: (caption, URL) pairs)."""
    parts = [f"### {title}", ""]
    parts += [f"- {label}: {url}" for label, url in links]
    parts += ["", summary_markdown(history), "", "*Accuracies: value ± one standard error over problems.*"]
    if champion:
        parts += ["", "#### Champion", "", champion]
    if images:
        parts += ["", "#### Plots", ""] + [f"![{caption}]({url})" for caption, url in images]
    return "\n".join(parts) + "\n"


def eval_series(history: Sequence[dict]) -> list[tuple[str, str]]:
    """(metric, label) of every accuracy curve: held-out greedy, maj@k and pass@k, then
    each extra eval set's greedy accuracy (one line per eval set)."""
    k = eval_k(history)
    series = [("eval.greedy_acc", "held-out greedy")]
    if k:
        series += [(f"eval.maj_at_{k}", f"held-out maj@{k}"), (f"eval.pass_at_{k}", f"held-out pass@{k}")]
    extra = dict.fromkeys(key[len("eval."):-len(".greedy_acc")] for row in history for key in row
                          if key.startswith("eval.") and key.endswith(".greedy_acc") and key.count(".") == 2)
    return series + [(f"eval.{name}.greedy_acc", f"{name} greedy") for name in extra]


def accuracy_figures(history: Sequence[dict], champion: int | None = None) -> dict:
    """{'accuracy_per_round': fig, 'accuracy_vs_compute': fig}: every eval curve with
    its 95 % interval, the y-range fitted to the data, and the champion round marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    rounds = [r["round"] for r in history]
    tokens = [r.get("tokens.cumulative", 0) for r in history]
    series = eval_series(history)
    figs = {}
    for name, xs, xlabel in (("accuracy_per_round", rounds, "round (0 = after SFT init)"),
                             ("accuracy_vs_compute", tokens, "generated tokens (cumulative, search + eval)")):
        fig, ax = plt.subplots(figsize=(6.4, 4.6), layout="constrained")
        # Curves side by side within a round, so their interval bars do not hide each other.
        width = (max(xs) - min(xs) or 1) * 0.012
        for i, (key, label) in enumerate(series):
            shifted = [x + (i - (len(series) - 1) / 2) * width for x in xs]
            ys = [r.get(key, float("nan")) for r in history]
            ax.errorbar(shifted, ys, yerr=_interval_bars(history, key), marker="o", capsize=3, label=label,
                        linestyle="-" if key.count(".") == 1 else "--", alpha=0.9)
        if champion is not None:
            at = rounds.index(champion)
            _mark_champion(ax, xs[at] - (len(series) - 1) / 2 * width, history[at]["eval.greedy_acc"])
        if name == "accuracy_per_round":
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # rounds are whole numbers
        _fit_accuracy_range(ax)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("accuracy (bars: 95 % interval)")
        ax.grid(alpha=0.3)
        fig.legend(loc="outside lower center", ncol=3, fontsize=8)
        figs[name] = fig
    return figs


def _interval_bars(history: Sequence[dict], key: str) -> list[list[float]]:
    """[below, above] half-widths of each point's 95 % interval, cut at 0 and 1."""
    below, above = [], []
    for row in history:
        y, half = row.get(key, float("nan")), Z95 * row.get(f"{key}_se", 0.0)
        below.append(min(half, y) if y == y else 0.0)  # y != y: a round without this metric
        above.append(min(half, 1 - y) if y == y else 0.0)
    return [below, above]


def _mark_champion(ax, x, y) -> None:
    ax.plot([x], [y], marker="*", markersize=16, color="gold", markeredgecolor="black", linestyle="none",
            zorder=5, label="champion")
    ax.annotate("champion", (x, y), textcoords="offset points", xytext=(8, 8), fontsize=8)


def _fit_accuracy_range(ax) -> None:
    """Matplotlib's own fit to the data (a fixed 0..1 flattens 0.10 -> 0.24), kept
    inside what an accuracy can be."""
    lo, hi = ax.get_ylim()
    ax.set_ylim(max(lo, -0.02), min(hi, 1.02))


def rerank_figure(table: Sequence[dict], title: str = "best-of-N reranking (held out)"):
    """Accuracy vs N (log2 axis) for each selection method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ns = [row["n"] for row in table]
    for method in [k for k in table[0] if k != "n"]:
        ax.plot(ns, [row[method] for row in table], marker="o", label=method)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("N (samples per problem)")
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def scaling_figure(table: Sequence[dict], title: str = "test-time compute scaling (held out)"):
    """Accuracy vs generated tokens per problem (log2 axis), one line per search
    method, each point labelled with its budget N."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for method in dict.fromkeys(row["method"] for row in table):
        rows = [r for r in table if r["method"] == method]
        xs, ys = [r["tokens_per_problem"] for r in rows], [r["accuracy"] for r in rows]
        ax.plot(xs, ys, marker="o", label=method)
        for r, x, y in zip(rows, xs, ys):
            ax.annotate(str(r["n"]), (x, y), textcoords="offset points", xytext=(3, 3), fontsize=7)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("generated tokens per problem")
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
