"""Figures: learning curves with 95% confidence intervals (Tamkin et al. Fig. 2) and the
reference panel, and the study figures (upsampling, gains, ALVIN sweeps)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from anchoral.experiments.references import ERM_ALL, ORACLE_BALANCED, PANEL_LABELS
from anchoral.experiments.report import METRIC_LABELS


def mean_and_ci95(values: np.ndarray) -> tuple[float, float]:
    """Mean and the half-width of a t-based 95% confidence interval (0 for one value)."""
    values = np.asarray(values, dtype=float)
    if values.size < 2:
        return float(values.mean()), 0.0
    half_width = stats.t.ppf(0.975, values.size - 1) * values.std(ddof=1) / np.sqrt(values.size)
    return float(values.mean()), float(half_width)


def plot_learning_curves(results: pd.DataFrame, path: str | Path, *, title: str = "",
                         panel: pd.DataFrame | None = None) -> Path:
    """Accuracy vs number of labels, one line per strategy, shaded 95% CI over seeds; with the
    reference panel's fits (``panel``, one row per fit) drawn by ``_draw_panel``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [m for m in METRIC_LABELS if m in results.columns]
    figure, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 4), sharex=True)
    axes = np.atleast_1d(axes)
    n_strategies = results["strategy"].nunique()
    shade = 0.2 if n_strategies <= 4 else 0.07  # many overlapping bands: keep the lines readable
    for axis, metric in zip(axes, metrics):
        for strategy, by_strategy in results.groupby("strategy", sort=False):
            curve = [(n, *mean_and_ci95(group[metric])) for n, group in by_strategy.groupby("n_labeled")]
            n_labeled, means, half_widths = map(np.array, zip(*curve))
            line, = axis.plot(n_labeled, 100 * means, marker=".", label=strategy)
            low, high = np.clip(means - half_widths, 0, 1), np.clip(means + half_widths, 0, 1)
            axis.fill_between(n_labeled, 100 * low, 100 * high, alpha=shade, color=line.get_color())
        if panel is not None and not panel.empty:
            _draw_panel(axis, panel, metric)
        axis.set_title(f"{METRIC_LABELS[metric]} accuracy")
        axis.set_xlabel("labeled examples")
        axis.set_ylabel("accuracy (%)")
        axis.grid(alpha=0.3)
    n_seeds = results["seed"].nunique()
    figure.suptitle(f"{title} (mean and 95% CI over {n_seeds} seeds)".strip())
    n_entries = len(axes[0].get_legend_handles_labels()[1])
    legend_rows = _legend_below(figure, axes[0], n_entries, title="strategy, then the reference panel")
    figure.tight_layout(rect=(0, 0.06 * legend_rows + 0.02, 1, 1))
    path = Path(path)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def _draw_panel(axis, panel: pd.DataFrame, metric: str) -> None:
    """The reference panel on a learning-curve axis: erm-all as a black dotted horizontal line
    (its fit used the whole pool, far right of the axis); oracle-balanced (oracle) as a grey
    dashed line through its checkpoint sizes, with 95% CI bars over seeds."""
    models = list(dict.fromkeys(panel["model_label"]))
    for position, model in enumerate(models):
        dots, dashes = (0, (1, 1 + 2 * position)), (0, (4, 2 + 2 * position))  # sparser for each further model
        suffix = f" [{model}]" if len(models) > 1 else ""
        fits = panel[panel["model_label"] == model]
        erm = fits[fits["reference"] == ERM_ALL]
        if not erm.empty:
            axis.axhline(100 * erm[metric].mean(), color="black", linestyle=dots, linewidth=1.5,
                         label=f"{PANEL_LABELS[ERM_ALL]}: {int(erm['n_labeled'].iloc[0])} labels{suffix}")
        oracle = fits[fits["reference"] == ORACLE_BALANCED]
        if not oracle.empty:
            curve = [(n, *mean_and_ci95(group[metric])) for n, group in oracle.groupby("n_labeled")]
            n_labeled, means, half_widths = map(np.array, zip(*curve))
            below, above = means - np.clip(means - half_widths, 0, 1), np.clip(means + half_widths, 0, 1) - means
            axis.errorbar(n_labeled, 100 * means, yerr=100 * np.stack([below, above]), color="dimgray",
                          linestyle=dashes, marker="D", markersize=4, capsize=2,
                          label=PANEL_LABELS[ORACLE_BALANCED] + suffix)


def _legend_below(figure, axis, n_entries: int, *, title: str) -> int:
    """One legend for the whole figure, centred under the panels (never over the data);
    returns its number of rows."""
    columns = min(n_entries, 7)
    handles, labels = axis.get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=columns, title=title, fontsize="small",
                  title_fontsize="small", frameon=False)
    return -(-n_entries // columns) + 1


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path, rect=None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout(rect=rect)
    figure.savefig(path, dpi=120)
    _pyplot().close(figure)
    return path


def plot_upsampling(table: pd.DataFrame, path: str | Path, *, title: str = "") -> Path:
    """Tamkin et al. Fig. 4: each group's acquired share over its pool share at the end of
    the budget, a bar per strategy, 95% CI over seeds; 1 = acquired at the pool's rate.
    ``table`` is ``tables.upsampling_at_final`` for one benchmark."""
    plt = _pyplot()
    groups = list(dict.fromkeys(table["group"]))
    strategies = list(dict.fromkeys(table["strategy"]))
    figure, axis = plt.subplots(figsize=(max(6, 1.6 * len(groups) + 0.4 * len(strategies)), 4.2))
    width = 0.8 / max(1, len(strategies))
    for position, strategy in enumerate(strategies):
        rows = table[table["strategy"] == strategy].set_index("group").reindex(groups)
        x = np.arange(len(groups)) + (position - (len(strategies) - 1) / 2) * width
        axis.bar(x, rows["mean"], width, yerr=rows["ci95"].fillna(0), capsize=2, label=strategy)
    axis.axhline(1.0, color="black", linestyle="--", linewidth=1, label="pool rate (random in expectation)")
    minority = set(table.loc[table["minority"].astype(bool), "group"]) if "minority" in table.columns else set()
    axis.set_xticks(np.arange(len(groups)), [f"{g}\n(minority)" if g in minority else g for g in groups])
    axis.set_xlabel("group (label / attribute)")
    axis.set_ylabel("upsampling ratio (acquired share / pool share)")
    axis.set_title(f"{title}: per-group upsampling at the end of the budget (mean, 95% CI)".lstrip(": "))
    axis.grid(alpha=0.3, axis="y")
    axis.legend(fontsize="small")
    return _save(figure, path)


def plot_gain_vs_rho(points: pd.DataFrame, path: str | Path, *, title: str = "") -> Path:
    """Tamkin et al. Fig. 8 (and Fig. 9 in the last panel when present): gain over the
    baseline at the end of the budget against the spurious-correlation strength rho.

    ``points`` has columns rho, strategy, metric, gain_mean, gain_ci95 (metric may also
    be ``minority_upsampling`` with the ratio itself in gain_mean)."""
    plt = _pyplot()
    metrics = [m for m in (*METRIC_LABELS, "minority_upsampling") if m in set(points["metric"])]
    figure, axes = plt.subplots(1, len(metrics), figsize=(4.6 * len(metrics), 4.4))
    axes = np.atleast_1d(axes)
    strategies = list(dict.fromkeys(points["strategy"]))
    colours = {strategy: f"C{number % 10}" for number, strategy in enumerate(strategies)}  # one colour per strategy in every panel
    for axis, metric in zip(axes, metrics):
        rows = points[points["metric"] == metric]
        for strategy in dict.fromkeys(rows["strategy"]):
            line = rows[rows["strategy"] == strategy].sort_values("rho")
            scale = 1 if metric == "minority_upsampling" else 100
            axis.errorbar(line["rho"], scale * line["gain_mean"], yerr=scale * line["gain_ci95"].fillna(0),
                          marker="o", capsize=3, label=strategy, color=colours[strategy])
        if metric == "minority_upsampling":
            axis.axhline(1.0, color="black", linestyle="--", linewidth=1)
            axis.set_title("minority-group upsampling ratio")
            axis.set_ylabel("acquired share / pool share")
        else:
            axis.axhline(0.0, color="black", linestyle="--", linewidth=1)
            axis.set_title(f"{METRIC_LABELS[metric]} accuracy gain over the baseline")
            axis.set_ylabel("gain (accuracy points)")
        axis.set_xlabel("rho (share of examples whose attribute agrees with the label)")
        axis.grid(alpha=0.3)
    handles = {}
    for axis in axes:
        for handle, label in zip(*axis.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    figure.legend(list(handles.values()), list(handles), loc="lower center", ncol=len(handles), title="strategy",
                  fontsize="small", title_fontsize="small", frameon=False)
    figure.suptitle(f"{title} (mean and 95% CI over seeds, paired with the baseline by seed)".strip())
    return _save(figure, path, rect=(0, 0.12, 1, 1))


def plot_gains_by_benchmark(gains: pd.DataFrame, path: str | Path, *, baseline: str = "random", title: str = "") -> Path:
    """Gain of each strategy over the baseline at the end of the budget, a group of bars per
    benchmark variant (e.g. pretrained vs randomly initialised encoder, Tamkin et al. Fig. 6)."""
    plt = _pyplot()
    metrics = [m for m in METRIC_LABELS if m in set(gains["metric"])]
    benchmarks = list(dict.fromkeys(gains["benchmark"]))
    strategies = list(dict.fromkeys(gains["strategy"]))
    figure, axes = plt.subplots(1, len(metrics), figsize=(max(5, 1.2 * len(benchmarks) * max(1, len(strategies)) / 2 + 2)
                                                          * len(metrics) / 1.5, 4.4))
    axes = np.atleast_1d(axes)
    width = 0.8 / max(1, len(strategies))
    for axis, metric in zip(axes, metrics):
        rows = gains[gains["metric"] == metric]
        for position, strategy in enumerate(strategies):
            bars = rows[rows["strategy"] == strategy].set_index("benchmark").reindex(benchmarks)
            x = np.arange(len(benchmarks)) + (position - (len(strategies) - 1) / 2) * width
            axis.bar(x, 100 * bars["gain_mean"], width, yerr=100 * bars["gain_ci95"].fillna(0), capsize=2,
                     label=strategy)
        axis.axhline(0.0, color="black", linewidth=1)
        axis.set_xticks(np.arange(len(benchmarks)), benchmarks, rotation=15, ha="right", fontsize="small")
        axis.set_ylabel(f"gain over {baseline} (accuracy points)")
        axis.set_title(f"{METRIC_LABELS[metric]} accuracy")
        axis.grid(alpha=0.3, axis="y")
    axes[0].legend(fontsize="small", title="strategy")
    figure.suptitle(f"{title}: gain over {baseline} at the end of the budget (mean, 95% CI over seeds)".lstrip(": "))
    return _save(figure, path)


def plot_alvin_studies(panels: dict[str, pd.DataFrame], path: str | Path, *, title: str = "",
                       reference: pd.DataFrame | None = None) -> Path:
    """ALVIN Fig. 2: (a) variants, (b) Beta shape alpha, (c) anchors per pair K.

    Each panel's frame has columns x (variant name or parameter value), metric, mean, std;
    ``reference`` (optional, columns metric, mean) draws Uncertainty's accuracy as dashed lines."""
    plt = _pyplot()
    names = {"variants": "(a) ALVIN variants", "alpha": "(b) Beta(alpha, beta) shape", "k": "(c) anchors per pair K"}
    present = [key for key in names if key in panels and not panels[key].empty]
    figure, axes = plt.subplots(1, len(present), figsize=(max(8, 5 * len(present)), 4.4))
    axes = np.atleast_1d(axes)
    colours = {"id_accuracy": "tab:blue", "ood_accuracy": "tab:orange", "worst_group_accuracy": "tab:red"}
    for axis, key in zip(axes, present):
        panel = panels[key]
        xs = list(dict.fromkeys(panel["x"]))
        metrics = [m for m in METRIC_LABELS if m in set(panel["metric"])]
        width = 0.8 / len(metrics)
        for position, metric in enumerate(metrics):
            rows = panel[panel["metric"] == metric].set_index("x").reindex(xs)
            x = np.arange(len(xs)) + (position - (len(metrics) - 1) / 2) * width
            axis.bar(x, 100 * rows["mean"], width, yerr=100 * rows["std"].fillna(0), capsize=2,
                     color=colours[metric], label=METRIC_LABELS[metric])
            if reference is not None and metric in set(reference["metric"]):
                level = float(reference.loc[reference["metric"] == metric, "mean"].iloc[0])
                axis.axhline(100 * level, color=colours[metric], linestyle="--", linewidth=1,
                             label=f"Uncertainty {METRIC_LABELS[metric]}")
        lowest = float(np.nanmin(panel["mean"] - panel["std"].fillna(0)))
        axis.set_ylim(max(0.0, 100 * lowest - 10), 100)
        axis.set_xticks(np.arange(len(xs)), [str(x) for x in xs], fontsize="small")
        axis.set_ylabel("accuracy (%) at the end of the budget")
        axis.set_title(names[key])
        axis.grid(alpha=0.3, axis="y")
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize="small", frameon=False)
    figure.suptitle(f"{title}: ALVIN components and hyper-parameters\n(accuracy at the end of the budget, "
                    "mean ± std over seeds)".lstrip(": "), fontsize="medium")
    return _save(figure, path, rect=(0, 0.07, 1, 1))
