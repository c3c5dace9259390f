"""The study report's tables, as tidy DataFrames (written as CSV) and Markdown.

Every function takes the results store's rows (one per round of every run, with
``benchmark_label`` and ``strategy_label`` columns) and aggregates over seeds:
standard deviations are sample ones (ddof=1) and confidence intervals t-based.
Shapes follow the papers: ALVIN Table 1 (accuracy at 1/5/10% of the pool), Table 3
(what the batches are like), Table 4 (minority recall per round), Table 6 (selection
time with ALVIN's phases) and Tamkin et al.'s label-efficiency multiplier.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from anchoral.experiments.plots import mean_and_ci95
from anchoral.experiments.report import METRIC_LABELS, PANEL_SEPARATOR, checkpoint_table_markdown, markdown_table
from anchoral.metrics.efficiency import label_efficiency

BATCH_MEASURES = {
    "batch_uncertainty": "Unc.",
    "batch_diversity": "Div.",
    "batch_representativeness": "Repr.",
}


def _std(values) -> float:
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    return float(values.std(ddof=1)) if values.size > 1 else float("nan")


def _mean(values) -> float:
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else float("nan")


def _ordered(frame: pd.DataFrame, column: str) -> list:
    return list(dict.fromkeys(frame[column]))


def pool_size(rows: pd.DataFrame) -> int:
    """The pool size of one benchmark's rows (n_labeled / fraction_labeled)."""
    return int(round(float((rows["n_labeled"] / rows["fraction_labeled"]).median())))


def checkpoint_count(fraction: float, pool: int) -> int:
    """Labels at a fractional checkpoint, as the loop resolves it (at least one)."""
    return max(1, int(round(fraction * pool)))


def final_rows(results: pd.DataFrame) -> pd.DataFrame:
    """The last round of every run."""
    last = results.groupby("run_id")["round"].transform("max")
    return results[results["round"] == last]


# -- ALVIN Table 1 --------------------------------------------------------------------------
def accuracy_at_checkpoints(results: pd.DataFrame, fractions, metrics=tuple(METRIC_LABELS)) -> pd.DataFrame:
    """Mean and std over seeds of each metric when ``fraction`` of the pool is labeled."""
    rows = []
    for benchmark in _ordered(results, "benchmark_label"):
        by_benchmark = results[results["benchmark_label"] == benchmark]
        pool = pool_size(by_benchmark)
        for strategy in _ordered(by_benchmark, "strategy_label"):
            by_strategy = by_benchmark[by_benchmark["strategy_label"] == strategy]
            for fraction in fractions:
                n_labeled = checkpoint_count(fraction, pool)
                at = by_strategy[by_strategy["n_labeled"] == n_labeled]
                if at.empty:
                    continue
                for metric in metrics:
                    values = at[metric].to_numpy(dtype=float)
                    rows.append({"benchmark": benchmark, "strategy": strategy, "fraction": fraction,
                                 "n_labeled": n_labeled, "metric": metric, "mean": float(np.nanmean(values)),
                                 "std": _std(values), "n_seeds": int(values.size)})
    return pd.DataFrame(rows, columns=["benchmark", "strategy", "fraction", "n_labeled", "metric", "mean", "std",
                                       "n_seeds"])


def _percent(mean: float, std: float) -> str:
    if np.isnan(mean):
        return "–"
    return f"{100 * mean:.1f}" if np.isnan(std) else f"{100 * mean:.1f} ± {100 * std:.1f}"


def accuracy_markdown(table: pd.DataFrame, benchmark: str, metrics=tuple(METRIC_LABELS),
                      panel: pd.DataFrame | None = None) -> str:
    """One benchmark's Table 1: a row per strategy, a column per (fraction, metric), in %; the
    reference panel (``references.panel_at_fractions``), if given, below the strategies."""
    references = None if panel is None or panel.empty else panel[panel["benchmark"] == benchmark]
    return checkpoint_table_markdown(table[table["benchmark"] == benchmark], metrics, references)


# -- ALVIN Table 3 --------------------------------------------------------------------------
def batch_character(results: pd.DataFrame) -> pd.DataFrame:
    """Uncertainty, diversity and representativeness of the selected batches: each run's
    mean over its selections, then mean and std over runs (seeds)."""
    measures = [m for m in BATCH_MEASURES if m in results.columns]
    rows = []
    for benchmark in _ordered(results, "benchmark_label"):
        by_benchmark = results[results["benchmark_label"] == benchmark]
        for strategy in _ordered(by_benchmark, "strategy_label"):
            by_strategy = by_benchmark[by_benchmark["strategy_label"] == strategy]
            per_run = by_strategy.groupby("run_id")[measures].mean()
            for measure in measures:
                values = per_run[measure].dropna().to_numpy(dtype=float)
                if values.size == 0:
                    continue
                rows.append({"benchmark": benchmark, "strategy": strategy, "measure": measure,
                             "mean": float(values.mean()), "std": _std(values), "n_runs": int(values.size)})
    return pd.DataFrame(rows, columns=["benchmark", "strategy", "measure", "mean", "std", "n_runs"])


def batch_character_markdown(table: pd.DataFrame, benchmark: str) -> str:
    rows = table[table["benchmark"] == benchmark]
    measures = [m for m in BATCH_MEASURES if m in set(rows["measure"])]
    body = []
    for strategy in _ordered(rows, "strategy"):
        cells = [strategy]
        for measure in measures:
            cell = rows[(rows["strategy"] == strategy) & (rows["measure"] == measure)]
            if cell.empty:
                cells.append("–")
                continue
            mean, std = cell["mean"].iloc[0], cell["std"].iloc[0]
            cells.append(f"{mean:.3f}" if np.isnan(std) else f"{mean:.3f} ± {std:.3f}")
        body.append(cells)
    return markdown_table(["strategy"] + [BATCH_MEASURES[m] for m in measures], body)


# -- ALVIN Table 4 --------------------------------------------------------------------------
def minority_recall_by_round(results: pd.DataFrame, column: str = "minority") -> pd.DataFrame:
    """Recall (and precision) of an inferred minority against the true groups, per round, mean and
    std over seeds: ``column="minority"`` for a strategy's inference (ALVIN's training dynamics),
    ``"head_minority"`` for a robust head's; only rows that carry one."""
    columns = ["benchmark", "strategy", "n_labeled", "recall_mean", "recall_std", "precision_mean", "n_runs"]
    if f"{column}_recall" not in results.columns:
        return pd.DataFrame(columns=columns)
    inferred = results.dropna(subset=[f"{column}_recall"])
    rows = []
    for (benchmark, strategy, n_labeled), by in inferred.groupby(["benchmark_label", "strategy_label", "n_labeled"],
                                                                 sort=False):
        recall = by[f"{column}_recall"].to_numpy(dtype=float)
        rows.append({"benchmark": benchmark, "strategy": strategy, "n_labeled": int(n_labeled),
                     "recall_mean": float(recall.mean()), "recall_std": _std(recall),
                     "precision_mean": _mean(by[f"{column}_precision"]),
                     "n_runs": int(recall.size)})
    return pd.DataFrame(rows, columns=columns).sort_values(["benchmark", "strategy", "n_labeled"], kind="stable")


def minority_recall_markdown(table: pd.DataFrame, benchmark: str, *, with_precision: bool = False) -> str:
    """A row per strategy, a column per round (labels at selection time), recall in % (and the
    mean precision in %, after a slash)."""
    rows = table[table["benchmark"] == benchmark]
    rounds = sorted(rows["n_labeled"].unique())
    body = []
    for strategy in _ordered(rows, "strategy"):
        cells = [strategy]
        for n_labeled in rounds:
            cell = rows[(rows["strategy"] == strategy) & (rows["n_labeled"] == n_labeled)]
            if cell.empty:
                cells.append("–")
                continue
            text = _percent(cell["recall_mean"].iloc[0], cell["recall_std"].iloc[0])
            if with_precision:
                precision = cell["precision_mean"].iloc[0]
                text += " / " + ("–" if np.isnan(precision) else f"{100 * precision:.0f}")
            cells.append(text)
        body.append(cells)
    return markdown_table(["strategy \\ labeled"] + [str(n) for n in rounds], body)


# -- ALVIN Table 6 --------------------------------------------------------------------------
def selection_time(results: pd.DataFrame) -> pd.DataFrame:
    """Wall time of one selection per strategy (mean and std over selections), with ALVIN's
    phases (anchor creation, example selection) where the diagnostics record them."""
    rows = []
    selecting = results[results["selected"].map(len) > 0]
    for benchmark in _ordered(selecting, "benchmark_label"):
        by_benchmark = selecting[selecting["benchmark_label"] == benchmark]
        for strategy in _ordered(by_benchmark, "strategy_label"):
            by = by_benchmark[by_benchmark["strategy_label"] == strategy]
            diagnostics = [json.loads(text) if text else {} for text in by["diagnostics"]]
            phases = [d for d in diagnostics if "seconds_anchor_creation" in d]
            seconds = by["select_seconds"].to_numpy(dtype=float)
            rows.append({
                "benchmark": benchmark, "strategy": strategy,
                "batch_size": int(np.median(by["selected"].map(len))),
                "select_mean": float(seconds.mean()), "select_std": _std(seconds), "n_selections": int(seconds.size),
                "anchor_creation_mean": float(np.mean([d["seconds_anchor_creation"] for d in phases])) if phases else np.nan,
                "example_selection_mean": float(np.mean([d["seconds_example_selection"] for d in phases])) if phases else np.nan,
                "fit_mean": float(by["fit_seconds"].mean()),
            })
    return pd.DataFrame(rows, columns=["benchmark", "strategy", "batch_size", "select_mean", "select_std",
                                       "n_selections", "anchor_creation_mean", "example_selection_mean", "fit_mean"])


def selection_time_markdown(table: pd.DataFrame, benchmark: str) -> str:
    rows = table[table["benchmark"] == benchmark]

    def seconds(value: float) -> str:
        return "–" if np.isnan(value) else f"{value:.3f}"

    body = [[r.strategy, str(r.batch_size),
             seconds(r.select_mean) + ("" if np.isnan(r.select_std) else f" ± {r.select_std:.3f}"),
             f"→ {seconds(r.anchor_creation_mean)}" if not np.isnan(r.anchor_creation_mean) else "–",
             f"→ {seconds(r.example_selection_mean)}" if not np.isnan(r.example_selection_mean) else "–",
             seconds(r.fit_mean)] for r in rows.itertuples()]
    return markdown_table(["strategy", "batch", "select s / batch", "anchor creation s", "example selection s",
                           "fit s / round"], body)


def ci95_half_width(std: float, n: int) -> float:
    """Half-width of a t-based 95% confidence interval of a mean from its sample std and n."""
    if n < 2 or not np.isfinite(std):
        return float("nan")
    from scipy import stats

    return float(stats.t.ppf(0.975, n - 1) * std / np.sqrt(n))


def final_ci_markdown(accuracy: pd.DataFrame, panel: pd.DataFrame | None, metric: str, fraction: float) -> str:
    """One metric at one fraction: a row per strategy (then the reference panel), a column per
    benchmark, each cell the mean ± the 95% CI half-width over seeds, in %."""
    def cell(rows: pd.DataFrame) -> str:
        if rows.empty:
            return "–"
        row = rows.iloc[0]
        half = ci95_half_width(row["std"], int(row["n_seeds"]))
        return f"{100 * row['mean']:.1f}" + ("" if np.isnan(half) else f" ± {100 * half:.1f}")

    at = accuracy[np.isclose(accuracy["fraction"], fraction) & (accuracy["metric"] == metric)]
    benchmarks = _ordered(at, "benchmark")
    body = [[strategy] + [cell(at[(at["strategy"] == strategy) & (at["benchmark"] == b)]) for b in benchmarks]
            for strategy in _ordered(at, "strategy")]
    if panel is not None and not panel.empty:
        ref = panel[np.isclose(panel["fraction"], fraction) & (panel["metric"] == metric)]
        if not ref.empty:
            body.append([PANEL_SEPARATOR] + [""] * len(benchmarks))
            body += [[f"*{label}*"] + [cell(ref[(ref["strategy"] == label) & (ref["benchmark"] == b)])
                                       for b in benchmarks] for label in _ordered(ref, "strategy")]
    return markdown_table(["strategy"] + benchmarks, body)


# -- Tamkin et al.: label efficiency and gains ----------------------------------------------
def mean_curve(rows: pd.DataFrame, metric: str) -> tuple[np.ndarray, np.ndarray]:
    curve = rows.groupby("n_labeled")[metric].mean().sort_index()
    return curve.index.to_numpy(dtype=float), curve.to_numpy(dtype=float)


def baseline_of(strategy: str, baseline: str, labels) -> str:
    """The row a strategy is read against: in a study of several models (labels "strategy · model")
    the baseline under the same model when it ran, else ``baseline`` itself."""
    if " · " in strategy:
        paired = f"{baseline} · {strategy.split(' · ', 1)[1]}"
        if paired in set(labels):
            return paired
    return baseline


def has_baseline(labels, baseline: str) -> bool:
    return any(label == baseline or label.startswith(f"{baseline} · ") for label in set(labels))


def label_efficiency_table(results: pd.DataFrame, baseline: str = "random",
                           metrics=tuple(METRIC_LABELS)) -> pd.DataFrame:
    """Tamkin et al.'s multiplier of every strategy against ``baseline``, on the mean curves."""
    rows = []
    for benchmark in _ordered(results, "benchmark_label"):
        by_benchmark = results[results["benchmark_label"] == benchmark]
        labels = set(by_benchmark["strategy_label"])
        for strategy in _ordered(by_benchmark, "strategy_label"):
            paired = baseline_of(strategy, baseline, labels)
            reference = by_benchmark[by_benchmark["strategy_label"] == paired]
            if strategy == paired or reference.empty:
                continue
            by = by_benchmark[by_benchmark["strategy_label"] == strategy]
            for metric in metrics:
                efficiency = label_efficiency(*mean_curve(reference, metric), *mean_curve(by, metric))
                rows.append({"benchmark": benchmark, "strategy": strategy, "metric": metric, **efficiency})
    return pd.DataFrame(rows, columns=["benchmark", "strategy", "metric", "target", "baseline_labels",
                                       "strategy_labels", "multiplier"])


def label_efficiency_markdown(table: pd.DataFrame, benchmark: str, metrics=tuple(METRIC_LABELS)) -> str:
    rows = table[table["benchmark"] == benchmark]
    present = [m for m in metrics if m in set(rows["metric"])]
    body = []
    for strategy in _ordered(rows, "strategy"):
        cells = [strategy]
        for metric in present:
            r = rows[(rows["strategy"] == strategy) & (rows["metric"] == metric)].iloc[0]
            reached = np.isfinite(r.multiplier)
            cells.append(f"{r.multiplier:.2f}× ({r.strategy_labels:.0f} vs {r.baseline_labels:.0f})" if reached
                         else f"not reached ({100 * r.target:.1f}%)")
        body.append(cells)
    return markdown_table(["strategy"] + [f"{METRIC_LABELS.get(m, m)}" for m in present], body)


def final_gains(results: pd.DataFrame, baseline: str = "random", metrics=tuple(METRIC_LABELS)) -> pd.DataFrame:
    """Accuracy gain of each strategy over ``baseline`` at the end of the budget, paired by
    seed (both start from the same seed set and initial weights): mean and 95% CI half-width."""
    last = final_rows(results)
    rows = []
    for benchmark in _ordered(last, "benchmark_label"):
        by_benchmark = last[last["benchmark_label"] == benchmark]
        labels = set(by_benchmark["strategy_label"])
        for strategy in _ordered(by_benchmark, "strategy_label"):
            paired = baseline_of(strategy, baseline, labels)
            reference = by_benchmark[by_benchmark["strategy_label"] == paired].set_index("seed")
            if strategy == paired or reference.empty:
                continue
            by = by_benchmark[by_benchmark["strategy_label"] == strategy].set_index("seed")
            seeds = by.index.intersection(reference.index)
            for metric in metrics:
                differences = (by.loc[seeds, metric] - reference.loc[seeds, metric]).to_numpy(dtype=float)
                mean, half_width = mean_and_ci95(differences) if differences.size else (np.nan, np.nan)
                rows.append({"benchmark": benchmark, "strategy": strategy, "metric": metric,
                             "n_labeled": int(by["n_labeled"].max()), "gain_mean": mean, "gain_ci95": half_width,
                             "n_pairs": int(differences.size)})
    return pd.DataFrame(rows, columns=["benchmark", "strategy", "metric", "n_labeled", "gain_mean", "gain_ci95",
                                       "n_pairs"])


def upsampling_at_final(results: pd.DataFrame) -> pd.DataFrame:
    """Each group's upsampling ratio (acquired share / pool share; Tamkin et al. Fig. 4) at
    the end of the budget: mean and 95% CI half-width over seeds."""
    last = final_rows(results)
    rows = []
    for benchmark in _ordered(last, "benchmark_label"):
        by_benchmark = last[last["benchmark_label"] == benchmark]
        groups = [c[len("upsampling["):-1] for c in by_benchmark.columns
                  if c.startswith("upsampling[") and by_benchmark[c].notna().any()]
        minority = set()
        if "minority_groups" in by_benchmark.columns:
            for names in by_benchmark["minority_groups"].dropna().unique():
                minority |= set(json.loads(names))
        for strategy in _ordered(by_benchmark, "strategy_label"):
            by = by_benchmark[by_benchmark["strategy_label"] == strategy]
            for group in groups:
                values = by[f"upsampling[{group}]"].dropna().to_numpy(dtype=float)
                mean, half_width = mean_and_ci95(values) if values.size else (np.nan, np.nan)
                rows.append({"benchmark": benchmark, "strategy": strategy, "group": group,
                             "minority": group in minority, "mean": mean, "ci95": half_width,
                             "n_runs": int(values.size)})
    return pd.DataFrame(rows, columns=["benchmark", "strategy", "group", "minority", "mean", "ci95", "n_runs"])


def upsampling_markdown_table(table: pd.DataFrame, benchmark: str) -> str:
    rows = table[table["benchmark"] == benchmark]
    groups = _ordered(rows, "group")
    minority = set(rows.loc[rows["minority"].astype(bool), "group"])
    body = []
    for strategy in _ordered(rows, "strategy"):
        cells = [strategy]
        for group in groups:
            cell = rows[(rows["strategy"] == strategy) & (rows["group"] == group)]
            cells.append("–" if cell.empty or np.isnan(cell["mean"].iloc[0]) else f"{cell['mean'].iloc[0]:.2f}")
        body.append(cells)
    return markdown_table(["strategy"] + [f"{g} (minority)" if g in minority else g for g in groups], body)


# -- data behind the sweep figures ----------------------------------------------------------
ALVIN_VARIANTS = ("alvin", "alvin-ran", "alvin-int-all", "alvin-uni", "alvin-kmean")


def _resolved_strategy_params(name: str, explicit: str) -> dict:
    from anchoral.experiments.config import constructor_parameters
    from anchoral.strategies import STRATEGIES

    return {**constructor_parameters(STRATEGIES[name]), **json.loads(explicit or "{}")}


def alvin_panels(results: pd.DataFrame, benchmark: str) -> dict[str, pd.DataFrame]:
    """ALVIN Fig. 2's panels for one benchmark, at the end of the budget: ``variants``
    (each ALVIN variant at its defaults), ``alpha`` (ALVIN runs differing from the
    defaults only in the Beta shape) and ``k`` (only in anchors per pair). Each frame:
    x, metric, mean, std over seeds. A panel with fewer than two x values is left out."""
    from anchoral.experiments.config import constructor_parameters
    from anchoral.strategies import STRATEGIES

    last = final_rows(results[results["benchmark_label"] == benchmark])
    last = last[last["strategy"].isin(ALVIN_VARIANTS)]
    panels: dict[str, list] = {"variants": [], "alpha": [], "k": []}
    for (name, explicit), runs in last.groupby(["strategy", "strategy_params"], sort=False):
        params = _resolved_strategy_params(name, explicit)
        defaults = constructor_parameters(STRATEGIES[name])
        changed = {k for k in params if params[k] != defaults.get(k)}
        placements = []
        if not changed:
            placements.append(("variants", name))
        if name == "alvin" and changed <= {"alpha", "beta"}:
            placements.append(("alpha", f"({params['alpha']:g}, {params['beta']:g})"))
        if name == "alvin" and changed <= {"n_anchors_per_pair"}:
            placements.append(("k", params["n_anchors_per_pair"]))
        for panel, x in placements:
            for metric in METRIC_LABELS:
                values = runs[metric].to_numpy(dtype=float)
                panels[panel].append({"x": x, "metric": metric, "mean": float(values.mean()), "std": _std(values),
                                      "n_seeds": int(values.size)})
    frames = {}
    for panel, rows in panels.items():
        frame = pd.DataFrame(rows, columns=["x", "metric", "mean", "std", "n_seeds"])
        if frame["x"].nunique() >= 2:
            if panel == "k":
                frame = frame.sort_values("x", kind="stable")
            if panel == "variants":
                order = {name: i for i, name in enumerate(ALVIN_VARIANTS)}
                frame = frame.sort_values("x", key=lambda s: s.map(order), kind="stable")
            frames[panel] = frame.reset_index(drop=True)
    return frames


def benchmark_rho(results: pd.DataFrame) -> dict[str, float]:
    """rho of every benchmark variant that has one (explicit, or the benchmark's default)."""
    from anchoral.data.benchmarks import benchmark_defaults

    rhos = {}
    for label, rows in results.groupby("benchmark_label", sort=False):
        name = rows["benchmark"].iloc[0]
        explicit = json.loads(rows["benchmark_params"].iloc[0])
        try:
            defaults = benchmark_defaults(name)
        except Exception:  # a benchmark no longer registered: only explicit values count
            defaults = {}
        rho = explicit.get("rho", defaults.get("rho"))
        if rho is not None:
            rhos[label] = float(rho)
    return rhos


def rho_sweeps(results: pd.DataFrame) -> list[list[str]]:
    """Groups of benchmark labels that differ only in rho (same benchmark, encoder and other
    parameters), each with at least two rho values: the x axis of Tamkin et al. Fig. 8."""
    rhos = benchmark_rho(results)
    groups: dict[str, list[str]] = {}
    for label, rows in results.groupby("benchmark_label", sort=False):
        if label not in rhos:
            continue
        explicit = json.loads(rows["benchmark_params"].iloc[0])
        explicit.pop("rho", None)
        key = json.dumps([rows["benchmark"].iloc[0], rows["encoder"].iloc[0], explicit], sort_keys=True)
        groups.setdefault(key, []).append(label)
    return [sorted(labels, key=rhos.get) for labels in groups.values() if len({rhos[x] for x in labels}) >= 2]


def gain_vs_rho(results: pd.DataFrame, labels: list[str], baseline: str = "random") -> pd.DataFrame:
    """Tamkin et al. Fig. 8's points for one rho sweep: gain over the baseline at the end of
    the budget for each rho (and, as metric ``minority_upsampling``, each strategy's mean
    minority-group upsampling ratio, Fig. 9)."""
    rhos = benchmark_rho(results)
    subset = results[results["benchmark_label"].isin(labels)]
    gains = final_gains(subset, baseline)
    gains["rho"] = gains["benchmark"].map(rhos)
    points = [gains[["rho", "strategy", "metric", "gain_mean", "gain_ci95"]]]
    if "minority_upsampling" in subset.columns:
        last = final_rows(subset)
        rows = []
        for (benchmark, strategy), by in last.groupby(["benchmark_label", "strategy_label"], sort=False):
            mean, half_width = mean_and_ci95(by["minority_upsampling"].dropna().to_numpy(dtype=float))
            rows.append({"rho": rhos[benchmark], "strategy": strategy, "metric": "minority_upsampling",
                         "gain_mean": mean, "gain_ci95": half_width})
        points.append(pd.DataFrame(rows))
    return pd.concat(points, ignore_index=True)
