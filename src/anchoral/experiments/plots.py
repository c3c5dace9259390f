"""Figures: learning curves with 95% confidence intervals (Tamkin et al. Fig. 2)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from anchoral.experiments.report import METRIC_LABELS


def mean_and_ci95(values: np.ndarray) -> tuple[float, float]:
    """Mean and the half-width of a t-based 95% confidence interval (0 for one value)."""
    values = np.asarray(values, dtype=float)
    if values.size < 2:
        return float(values.mean()), 0.0
    half_width = stats.t.ppf(0.975, values.size - 1) * values.std(ddof=1) / np.sqrt(values.size)
    return float(values.mean()), float(half_width)


def plot_learning_curves(results: pd.DataFrame, path: str | Path, *, title: str = "") -> Path:
    """Accuracy vs number of labels, one line per strategy, shaded 95% CI over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [m for m in METRIC_LABELS if m in results.columns]
    figure, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 4), sharex=True)
    axes = np.atleast_1d(axes)
    for axis, metric in zip(axes, metrics):
        for strategy, by_strategy in results.groupby("strategy", sort=False):
            curve = [(n, *mean_and_ci95(group[metric])) for n, group in by_strategy.groupby("n_labeled")]
            n_labeled, means, half_widths = map(np.array, zip(*curve))
            axis.plot(n_labeled, 100 * means, marker=".", label=strategy)
            low, high = np.clip(means - half_widths, 0, 1), np.clip(means + half_widths, 0, 1)
            axis.fill_between(n_labeled, 100 * low, 100 * high, alpha=0.2)
        axis.set_title(f"{METRIC_LABELS[metric]} accuracy")
        axis.set_xlabel("labeled examples")
        axis.set_ylabel("accuracy (%)")
        axis.grid(alpha=0.3)
    axes[0].legend(title="strategy")
    n_seeds = results["seed"].nunique()
    figure.suptitle(f"{title} (mean and 95% CI over {n_seeds} seeds)".strip())
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
