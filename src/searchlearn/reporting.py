"""End-of-run reporting: the per-round summary table and accuracy plots."""

from __future__ import annotations

import io
from typing import Sequence

# (history key, column title) in display order; missing keys show as "-".
COLUMNS = [
    ("round", "round"),
    ("eval.greedy_acc", "greedy"),
    ("eval.maj_at_{k}", "maj@{k}"),
    ("eval.pass_at_{k}", "pass@{k}"),
    ("eval.handwritten.greedy_acc", "hand-written"),
    ("search.solved", "search solved"),
    ("learn.rft.examples", "train ex."),
    ("learn.train.last_loss", "train loss"),
    ("prm.eval_auc", "PRM AUC"),
    ("tokens.cumulative", "tokens (cum.)"),
    ("seconds", "wall s (this run)"),
]


def _eval_k(history: Sequence[dict]) -> int | None:
    for row in history:
        for key in row:
            if key.startswith("eval.maj_at_"):
                return int(key.rsplit("_", 1)[1])
    return None


def summary_rows(history: Sequence[dict]) -> list[dict]:
    k = _eval_k(history)
    out = []
    for row in history:
        cells = {}
        for key, title in COLUMNS:
            key, title = key.format(k=k), title.format(k=k)
            cells[title] = _cell(row.get(key), row.get(f"{key}_se"))
        out.append(cells)
    return out


def _cell(value, se=None) -> str:
    """A number as shown in the table; an accuracy with its standard error."""
    if value is None:
        return "-"
    if se is not None:
        return f"{value:.3f}±{se:.3f}"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


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


def accuracy_figures(history: Sequence[dict]) -> dict:
    """{'accuracy_per_round': fig, 'accuracy_vs_compute': fig}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = _eval_k(history)
    series = [("eval.greedy_acc", "greedy")]
    if k:
        series += [(f"eval.maj_at_{k}", f"maj@{k}"), (f"eval.pass_at_{k}", f"pass@{k}")]
    rounds = [r["round"] for r in history]
    tokens = [r.get("tokens.cumulative", 0) for r in history]
    figs = {}
    for name, xs, xlabel in (("accuracy_per_round", rounds, "round (0 = after SFT init)"),
                             ("accuracy_vs_compute", tokens, "generated tokens (cumulative, search + eval)")):
        fig, ax = plt.subplots(figsize=(6, 4))
        for key, label in series:
            ax.plot(xs, [r.get(key, float("nan")) for r in history], marker="o", label=label)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("held-out accuracy")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        figs[name] = fig
    return figs


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
