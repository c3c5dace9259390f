"""Tables of results shaped like ALVIN Table 1: accuracy at fixed labeled fractions, mean +- std over seeds."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

METRIC_LABELS = {
    "id_accuracy": "ID",
    "ood_accuracy": "OOD",
    "worst_group_accuracy": "worst-group",
}
PANEL_SEPARATOR = "*reference panel*"
"""First cell of the row that separates the strategies from the reference panel."""


def checkpoint_summary(results: pd.DataFrame, fractions=(0.01, 0.05, 0.10),
                       metrics=tuple(METRIC_LABELS)) -> pd.DataFrame:
    """Long table: strategy, fraction, metric, mean, std (sample std, ddof=1), n_seeds."""
    rows = []
    for strategy, by_strategy in results.groupby("strategy", sort=False):
        for fraction in fractions:
            at = by_strategy[np.isclose(by_strategy["fraction_labeled"], fraction, atol=1e-9)]
            if at.empty:
                continue
            for metric in metrics:
                values = at[metric].to_numpy(dtype=float)
                rows.append({
                    "strategy": strategy,
                    "fraction": fraction,
                    "n_labeled": int(at["n_labeled"].iloc[0]),
                    "metric": metric,
                    "mean": float(values.mean()),
                    "std": float(values.std(ddof=1)) if values.size > 1 else float("nan"),
                    "n_seeds": int(values.size),
                })
    return pd.DataFrame(rows)


def _cell(mean: float, std: float) -> str:
    if np.isnan(mean):
        return "–"
    if np.isnan(std):
        return f"{100 * mean:.1f}"
    return f"{100 * mean:.1f} ± {100 * std:.1f}"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def checkpoint_table(summary: pd.DataFrame, metrics=tuple(METRIC_LABELS),
                     fractions=None) -> tuple[list[str], list[list[str]]]:
    """ALVIN Table 1's shape: one row per strategy, a column per (fraction, metric), accuracy in %.

    ``fractions`` (default: those in ``summary``) are the columns; a missing cell is "–"."""
    if fractions is None:
        fractions = sorted(summary["fraction"].unique()) if not summary.empty else []
    header = ["strategy"] + [f"{METRIC_LABELS.get(m, m)} @{100 * f:g}%" for f in fractions for m in metrics]
    rows = []
    for strategy, by_strategy in summary.groupby("strategy", sort=False) if not summary.empty else ():
        row = [strategy]
        for fraction in fractions:
            for metric in metrics:
                cell = by_strategy[(by_strategy["fraction"] == fraction) & (by_strategy["metric"] == metric)]
                row.append(_cell(cell["mean"].iloc[0], cell["std"].iloc[0]) if not cell.empty else "–")
        rows.append(row)
    return header, rows


def checkpoint_table_markdown(summary: pd.DataFrame, metrics=tuple(METRIC_LABELS),
                              panel: pd.DataFrame | None = None) -> str:
    """The checkpoint table in Markdown; the reference panel (``references.panel_at_fractions``),
    if given, goes below the strategies after a ``PANEL_SEPARATOR`` row."""
    if summary.empty:
        return "(no round landed on a reported fraction)"
    if panel is None or panel.empty:
        return markdown_table(*checkpoint_table(summary, metrics))
    fractions = sorted(set(summary["fraction"]) | set(panel["fraction"]))
    header, rows = checkpoint_table(summary, metrics, fractions)
    _, reference_rows = checkpoint_table(panel, metrics, fractions)
    return markdown_table(header, rows + [[PANEL_SEPARATOR] + [""] * (len(header) - 1)] + reference_rows)


def upsampling_markdown(results: pd.DataFrame) -> str:
    """Mean upsampling ratio per group at the final round (Tamkin et al. Fig. 4)."""
    columns = [c for c in results.columns if c.startswith("upsampling[")]
    if not columns:
        return ""
    last = results[results["round"] == results.groupby(["strategy", "seed"])["round"].transform("max")]
    header = ["strategy"] + [c[len("upsampling["):-1] for c in columns]
    rows = [[strategy] + [f"{by[c].mean():.2f}" for c in columns] for strategy, by in last.groupby("strategy", sort=False)]
    return markdown_table(header, rows)


def timing_markdown(results: pd.DataFrame) -> str:
    """Mean wall time per round of each phase (fit, select)."""
    rows = []
    for strategy, by in results.groupby("strategy", sort=False):
        selecting = by[by["select_seconds"] > 0]
        rows.append([strategy, f"{by['fit_seconds'].mean():.2f}",
                     f"{selecting['select_seconds'].mean():.4f}" if not selecting.empty else "–",
                     f"{(by['stop_reason'] == 'loss_ratio').mean():.0%}"])
    return markdown_table(["strategy", "fit s/round", "select s/round", "fits ended by the loss rule"], rows)


def minority_inference_markdown(results: pd.DataFrame) -> str:
    """ALVIN Table 4: recall and precision of the inferred minority per round, mean over seeds."""
    if "minority_recall" not in results.columns:
        return ""
    rows = []
    inferred = results.dropna(subset=["minority_recall", "minority_precision"], how="all")
    for (strategy, n_labeled), by in inferred.groupby(["strategy", "n_labeled"], sort=True):
        rows.append([strategy, str(n_labeled), f"{by['minority_recall'].mean():.2f}",
                     f"{by['minority_precision'].mean():.2f}", f"{by['n_true_minority_labeled'].mean():.1f}",
                     f"{by['n_inferred_minority'].mean():.1f}"])
    if not rows:
        return ""
    return markdown_table(["strategy", "labeled", "minority recall", "precision", "true minority labeled",
                           "inferred minority"], rows)


def phase_timing_markdown(results: pd.DataFrame) -> str:
    """ALVIN Table 6's split: mean seconds per selection in anchor creation and example selection."""
    rows = []
    for strategy, by in results.groupby("strategy", sort=False):
        phases = [json.loads(text) for text in by["diagnostics"] if text and text != "{}"]
        phases = [d for d in phases if "seconds_anchor_creation" in d]
        if phases:
            creation = np.mean([d["seconds_anchor_creation"] for d in phases])
            selection = np.mean([d["seconds_example_selection"] for d in phases])
            anchors = np.mean([d["n_anchors"] for d in phases])
            fallbacks = sum(bool(d["fallbacks"]) for d in phases)
            rows.append([strategy, f"{creation:.4f}", f"{selection:.4f}", f"{anchors:.0f}",
                         f"{fallbacks}/{len(phases)}"])
    if not rows:
        return ""
    return markdown_table(["strategy", "anchor creation s", "example selection s", "anchors", "selections with a fallback"], rows)
