"""``anchoral report RUN_DIR``: the paper-shaped tables (Markdown + CSV) and figures (PNG)
of whatever a study's run directory holds.

Written next to the results: ``report.md``, ``tables/*.csv`` and ``figures/*.png``.
Every table and figure is built from what the run directory stores (rounds, and the
representations of ``anchoral.experiments.probing``; no data or model is loaded), so a
report of a half-finished study shows what has finished. The analyses of stored
representations (``anchoral.experiments.analyses``: shortcut extractability, the map of
acquisitions) cache their results in the directory's ``cache/``; their cost is printed
in the report's last section.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from anchoral.errors import AnchoralError
from anchoral.experiments import analyses, plots, tables
from anchoral.experiments.config import DEFAULT_FRACTIONS, ConfigError, StudyConfig, load_config
from anchoral.experiments.references import MISSING_RANDOM, panel_at_fractions, panel_note
from anchoral.experiments.report import METRIC_LABELS, markdown_table
from anchoral.experiments.results import CONFIG_NAME, ResultsStore


def slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9.=-]+", "_", label).strip("_")


def _stored_config(run_dir: Path) -> StudyConfig | None:
    path = run_dir / CONFIG_NAME
    if not path.exists():
        return None
    try:
        return load_config(path)
    except ConfigError:  # written by an older registry: report with defaults
        return None


def _fractions(config: StudyConfig | None, results: pd.DataFrame) -> tuple[float, ...]:
    if config is not None:
        return config.report_fractions()
    loop = json.loads(results["loop_config"].iloc[0])
    values = (*loop.get("checkpoints", ()), loop.get("budget"))
    return tuple(sorted({float(v) for v in values if isinstance(v, float)})) or DEFAULT_FRACTIONS


@dataclass(frozen=True)
class MapRequest:
    """Which map of acquisitions to draw: ``seed`` (default: the smallest), ``fraction`` of the pool
    labeled (default: the end of the budget), ``method`` of the 2-D embedding; ``required`` = asked for
    explicitly, so a run directory without stored representations is an error rather than a note;
    ``draw`` = False leaves the map out."""

    seed: int | None = None
    fraction: float | None = None
    method: str = "tsne"
    required: bool = False
    draw: bool = True


def write_study_report(run_dir: str | Path, *, probe: str = "linear", map_request: MapRequest = MapRequest()) -> Path:
    """Write report.md, tables/*.csv and figures/*.png for ``run_dir``; return report.md's path.

    ``probe`` is the MDL probe of the shortcut-extractability table (``"linear"`` or ``"mlp"``);
    ``map_request`` chooses the map of acquisitions. Bad options and a required map the directory
    cannot draw raise before anything is written."""
    run_dir = Path(run_dir)
    store = ResultsStore.open(run_dir)
    results = store.load_results()
    if results.empty:
        raise AnchoralError(f"{run_dir} holds no finished run yet; nothing to report")
    config = _stored_config(run_dir)
    baseline = config.report.baseline if config is not None else "random"
    fractions = _fractions(config, results)
    maps = _plan_maps(store, results, fractions, map_request, probe)
    tables_dir, figures_dir = run_dir / "tables", run_dir / "figures"
    tables_dir.mkdir(exist_ok=True)
    figures_dir.mkdir(exist_ok=True)
    benchmarks = list(dict.fromkeys(results["benchmark_label"]))
    baseline_present = tables.has_baseline(results["strategy_label"], baseline)
    panel = store.load_panel()

    accuracy = tables.accuracy_at_checkpoints(results, fractions)
    panel_accuracy = panel_at_fractions(panel, fractions, METRIC_LABELS) if not panel.empty else pd.DataFrame()
    character = tables.batch_character(results)
    recall = tables.minority_recall_by_round(results)
    head_recall = tables.minority_recall_by_round(results, "head_minority")
    timing = tables.selection_time(results)
    efficiency = tables.label_efficiency_table(results, baseline) if baseline_present else pd.DataFrame()
    upsampling = tables.upsampling_at_final(results)
    gains = tables.final_gains(results, baseline) if baseline_present else pd.DataFrame()
    for name, table in (("table1_accuracy", accuracy), ("table1_reference_panel", panel_accuracy),
                        ("table3_batches", character),
                        ("table4_minority_recall", recall), ("table4_head_group_inference", head_recall),
                        ("table6_selection_time", timing),
                        ("label_efficiency", efficiency), ("upsampling", upsampling), ("gains", gains)):
        if not table.empty:
            table.to_csv(tables_dir / f"{name}.csv", index=False)

    lines = _header(store, results, config, fractions, baseline, panel)

    lines += ["## Accuracy at fractions of the pool labeled (ALVIN Table 1)", "",
              "Accuracy (%) mean ± std over seeds. Worst-group = the lowest per-group accuracy on the "
              "group-balanced OOD test set.", "",
              _panel_text(panel, random_present="random" in set(results["strategy"])), ""]
    for benchmark in benchmarks:
        lines += [f"### {benchmark}", "", tables.accuracy_markdown(accuracy, benchmark, panel=panel_accuracy)
                  if benchmark in set(accuracy["benchmark"]) else "(no run reached a reported fraction)", ""]

    final = max(fractions) if len(fractions) else None
    if final is not None and not accuracy.empty and np.isclose(accuracy["fraction"], final).any():
        lines += [f"## At {100 * final:g}% of the pool labeled, with 95% confidence intervals", "",
                  "Accuracy (%) mean ± the half-width of a t-based 95% confidence interval over seeds; a column "
                  "per benchmark, the reference panel below the strategies.", ""]
        for metric, label in METRIC_LABELS.items():
            lines += [f"### {label} accuracy", "",
                      tables.final_ci_markdown(accuracy, panel_accuracy, metric, final), ""]

    lines += ["## Learning curves (Tamkin et al. Fig. 2)", ""]
    for benchmark in benchmarks:
        rows = results[results["benchmark_label"] == benchmark].assign(
            strategy=lambda frame: frame["strategy_label"])
        path = plots.plot_learning_curves(rows, figures_dir / f"learning_curves-{slug(benchmark)}.png",
                                          title=benchmark, panel=_panel_of(panel, benchmark))
        lines += [f"![learning curves, {benchmark}](figures/{path.name})", ""]

    if not efficiency.empty:
        lines += [f"## Label efficiency against {baseline} (Tamkin et al. §5.1)", "",
                  f"Labels {baseline} needs to reach its own final accuracy divided by the labels the strategy "
                  "needs to reach it (mean curves over seeds, linear interpolation between rounds); "
                  "in brackets: the strategy's labels vs the baseline's. \"not reached\" = the strategy's mean "
                  "curve never reaches the baseline's final accuracy within the budget.", ""]
        for benchmark in benchmarks:
            if benchmark in set(efficiency["benchmark"]):
                lines += [f"### {benchmark}", "", tables.label_efficiency_markdown(efficiency, benchmark), ""]

    if not upsampling.empty:
        lines += ["## Per-group upsampling at the end of the budget (Tamkin et al. Fig. 4)", "",
                  "Acquired share of each (label / attribute) group over its share of the pool; > 1 = the "
                  "strategy acquired the group more often than random sampling would in expectation.", ""]
        for benchmark in benchmarks:
            rows = upsampling[upsampling["benchmark"] == benchmark]
            if rows.empty:
                continue
            path = plots.plot_upsampling(rows, figures_dir / f"upsampling-{slug(benchmark)}.png", title=benchmark)
            lines += [f"### {benchmark}", "", tables.upsampling_markdown_table(upsampling, benchmark), "",
                      f"![upsampling, {benchmark}](figures/{path.name})", ""]

    overlap = analyses.uncertainty_overlap(results)
    if not overlap.empty:
        overlap.to_csv(tables_dir / "uncertainty_overlap.csv", index=False)
    lines += _per_benchmark_section(
        "Where least confidence, entropy and margin differ",
        "Picks shared by each pair of uncertainty measures: in the first batch (the same seed set and the same "
        "model for all three, so any difference is the measure's) and, in brackets, the range over the later "
        "batches (by then the labeled sets differ). With two classes the three rank the pool identically "
        "(up to float rounding); with more they part ways.",
        overlap, benchmarks, analyses.uncertainty_overlap_markdown)
    lines += _per_benchmark_section(
        "What the batches are like (ALVIN Table 3)",
        "Unc. = mean predictive entropy (nats) of the batch under a model trained on the whole labeled "
        "pool; Div. = (mean over the unlabeled pool of the distance to the nearest batch member)^-1; "
        "Repr. = mean cosine similarity of each batch member to its 10 most similar unlabeled examples. "
        "Distances in the frozen encoder's feature space; each run's mean over its selections, then "
        "mean ± std over seeds.",
        character, benchmarks, tables.batch_character_markdown)
    lines += _per_benchmark_section(
        "Minority inference from training dynamics (ALVIN Table 4)",
        "Recall (%) of the truly-minority labeled examples among those the strategy inferred as "
        "minority, at each round (columns: labels when the batch was chosen), mean ± std over seeds.",
        recall, benchmarks, tables.minority_recall_markdown)
    lines += _per_benchmark_section(
        "Group inference of the robust heads vs the true groups (ALVIN Table 4, extended)",
        "For each run whose model trains a robust head: recall (%, mean ± std over seeds) of the truly-minority "
        "labeled examples among those the head's label-free group inference marked minority, then the mean "
        "precision (%), at each round. The inference never sees the groups; they are scored here, outside it.",
        head_recall, benchmarks, partial(tables.minority_recall_markdown, with_precision=True))
    lines += _per_benchmark_section(
        "Selection wall time (ALVIN Table 6)",
        "Seconds to choose one batch (mean ± std over selections) on this machine's CPU; for ALVIN, "
        "split into anchor creation and example selection. Fit = training the head each round.",
        timing, benchmarks, tables.selection_time_markdown)

    extractability, reasons, mdl_cost = analyses.extractability(store, results, probe=probe)
    costs = [mdl_cost] if mdl_cost is not None else []
    if not extractability.empty:
        extractability.to_csv(tables_dir / f"table5_extractability_{probe}.csv", index=False)
    lines += ["## Shortcut extractability (ALVIN Table 5)", "",
              f"Minimum-description-length probing of the shortcut attribute from each trained model's f_enc (online "
              f"code, Voita & Titov 2020; {probe} probe): a probing set from the benchmark's test splits, balanced "
              "over label x attribute, sent in blocks of 0.1, 0.2, ..., 50, 100% of it, the first with the uniform "
              "code, each next one with the cross-entropy of a probe trained on the earlier blocks. Compression = "
              "uniform codelength / online codelength (1 = the attribute cannot be read; higher = easier to "
              "extract). Probe accuracy: the last probe on the held-out second half. Mean ± std over seeds; the "
              "reference panel's fits below the strategies.", ""]
    for benchmark in benchmarks:
        if benchmark in reasons:
            lines += [f"### {benchmark}", "", f"Not computed: {reasons[benchmark]}", ""]
        elif not extractability.empty and benchmark in set(extractability["benchmark"]):
            lines += [f"### {benchmark}", "", analyses.extractability_markdown(extractability, benchmark), ""]
        else:
            lines += [f"### {benchmark}", "", f"Not computed: no run stored representations "
                      f"({analyses.NO_REPRESENTATIONS}).", ""]

    lines += ["## What each strategy acquires (Tamkin et al. Appendix H)", ""]
    if isinstance(maps, str):
        lines += [f"No map: {maps}", ""]
    else:
        for benchmark, (key, seed, n_labeled, pool) in maps.items():
            coordinates, seconds, cached = analyses.pool_map(store, key, method=map_request.method)
            costs.append(analyses.Cost(f"map of the pool ({map_request.method})", 1, seconds, int(cached),
                                       f"{benchmark}: 2-D embedding of the {len(coordinates)} pool examples' "
                                       "frozen features, computed once per run directory"))
            panels = analyses.map_panels(results, benchmark, seed, n_labeled)
            path = analyses.plot_acquisition_map(
                coordinates, pool["groups"], [str(name) for name in pool["group_names"]], pool["minority_groups"],
                panels, figures_dir / f"map-{slug(benchmark)}.png",
                title=f"{benchmark}: seed {seed}, {n_labeled} labels ({map_request.method} of the frozen features)")
            lines += [f"### {benchmark}", "",
                      f"{map_request.method} of the pool's frozen-encoder features (shared by every strategy); "
                      f"seed {seed}, at {n_labeled} labels. Small dots: the pool, colour = group; black x: the "
                      "seed set; large dots: the strategy's acquisitions; gold stars: where the anchors of ALVIN's "
                      "last selection fall (each at its nearest unlabeled example in f_enc; area = anchors there).",
                      "", f"![map of acquisitions, {benchmark}](figures/{path.name})", ""]

    alvin_sections = []
    for benchmark in benchmarks:
        panels = tables.alvin_panels(results, benchmark)
        if not panels:
            continue
        last = tables.final_rows(results[(results["benchmark_label"] == benchmark)
                                         & (results["strategy"] == "entropy")])
        reference = (pd.DataFrame([{"metric": m, "mean": float(last[m].mean())} for m in METRIC_LABELS])
                     if not last.empty else None)
        path = plots.plot_alvin_studies(panels, figures_dir / f"alvin_sweeps-{slug(benchmark)}.png", title=benchmark,
                                        reference=reference)
        for key, frame in panels.items():
            frame.assign(benchmark=benchmark, panel=key).to_csv(
                tables_dir / f"alvin_{key}-{slug(benchmark)}.csv", index=False)
        alvin_sections += [f"### {benchmark}", "", _alvin_markdown(panels), "",
                           f"![ALVIN sweeps, {benchmark}](figures/{path.name})", ""]
    if alvin_sections:
        lines += ["## ALVIN variants and hyper-parameters (ALVIN Fig. 2)", "",
                  "Accuracy (%) at the end of the budget, mean ± std over seeds. Dashed lines: Uncertainty "
                  "(entropy) when the study ran it.", ""] + alvin_sections

    if not gains.empty:
        path = plots.plot_gains_by_benchmark(gains, figures_dir / "gains_by_benchmark.png", baseline=baseline,
                                             title=config.name if config else "")
        lines += [f"## Gain over {baseline} by benchmark (Tamkin et al. Fig. 6 when the variants differ by encoder)",
                  "", f"Paired by seed; with several models, `strategy · model` is read against `{baseline} · model`.",
                  "", _gains_markdown(gains), "", f"![gains by benchmark](figures/{path.name})", ""]
        for number, labels in enumerate(tables.rho_sweeps(results), start=1):
            points = tables.gain_vs_rho(results, labels, baseline)
            points.to_csv(tables_dir / f"gain_vs_rho-{number}.csv", index=False)
            name = results.loc[results["benchmark_label"] == labels[0], "benchmark"].iloc[0]
            path = plots.plot_gain_vs_rho(points, figures_dir / f"gain_vs_rho-{number}.png",
                                          title=f"{name}: gain over {baseline} vs rho")
            lines += [f"## Gain vs correlation strength rho (Tamkin et al. Fig. 8, 9): {name}", "",
                      _rho_markdown(points), "", f"![gain vs rho](figures/{path.name})", ""]

    lines += ["## Cost of the analyses of stored representations", "",
              "Wall time on this machine when each was computed (read back from `cache/` afterwards).", ""]
    lines += [markdown_table(["analysis", "computations", "seconds in all", "seconds each", "from the cache", "what"],
                             [[c.analysis, str(c.count), f"{c.seconds:.1f}", f"{c.seconds / c.count:.2f}",
                               str(c.cached), c.detail] for c in costs]) if costs else "(none computed)", ""]

    report = run_dir / "report.md"
    report.write_text("\n".join(lines))
    return report


def _plan_maps(store, results, fractions, request: MapRequest, probe: str) -> dict | str:
    """{benchmark: (benchmark key, seed, labels, stored pool)} of the maps to draw, or why there are none
    (an error instead when the map is required); the options checked before anything is written."""
    from anchoral.metrics.mdl import PROBES

    if probe not in PROBES:
        raise AnchoralError(f"--probe must be one of {', '.join(PROBES)}; got {probe!r}")
    if request.method not in analyses.MAP_METHODS:
        raise AnchoralError(f"--map-method must be one of {', '.join(analyses.MAP_METHODS)}; got {request.method!r}")
    if not request.draw:
        return "left out (--no-map)"
    seeds = sorted(results["seed"].unique().tolist())
    seed = seeds[0] if request.seed is None else request.seed
    if seed not in seeds:
        raise AnchoralError(f"--map-seed {seed} is not a seed of this run directory; its seeds: {seeds}")
    runs = store.runs()
    maps, missing = {}, []
    for benchmark, rows in results.groupby("benchmark_label", sort=False):
        key = analyses.benchmark_key_of(runs.loc[runs["benchmark_label"] == benchmark, "spec"].iloc[0])
        pool = store.benchmark_data(key, "pool")
        first_rounds = rows.loc[(rows["seed"] == seed) & (rows["round"] == 0)]
        if (pool is None or store.benchmark_data(key, "pool_features") is None or "seed_indices" not in rows.columns
                or not first_rounds["seed_indices"].map(lambda value: isinstance(value, list)).all()):
            missing.append(benchmark)  # a run stored before seed sets were kept cannot be drawn
            continue
        reached = rows.loc[rows["seed"] == seed, "n_labeled"]
        if request.fraction is None:
            n_labeled = int(reached.max())
        else:
            n_labeled = tables.checkpoint_count(request.fraction, len(pool["labels"]))
            if not (reached == n_labeled).any():
                raise AnchoralError(f"no run of {benchmark!r} with seed {seed} has {n_labeled} labels "
                                    f"({100 * request.fraction:g}% of the pool); choose a --map-fraction among "
                                    f"{[float(f) for f in fractions]} or leave it out for the end of the budget")
        maps[benchmark] = (key, seed, n_labeled, pool)
    if missing:
        reason = (f"{store.run_dir} holds no stored representations for {', '.join(repr(b) for b in missing)} "
                  f"({analyses.NO_REPRESENTATIONS})")
        if request.required:
            raise analyses.MissingRepresentations(reason)
        if not maps:
            return reason
    return maps


def _panel_text(panel: pd.DataFrame, *, random_present: bool) -> str:
    """What the reference rows are, or why there are none."""
    if not panel.empty:
        return panel_note(random_present)
    missing = ("No reference panel is stored in this run directory (it was written before anchoral stored one): "
               "rerun `anchoral run` with its config to add it; only the reference fits run.")
    return missing if random_present else f"{missing} {MISSING_RANDOM}"


def _panel_of(panel: pd.DataFrame, benchmark: str) -> pd.DataFrame | None:
    """The stored reference-panel fits of one benchmark (None when the directory has no panel)."""
    return None if panel.empty else panel[panel["benchmark_label"] == benchmark]


def _header(store, results, config, fractions, baseline, panel) -> list[str]:
    runs = store.runs()
    invocations = store.invocations()
    machine_seconds = float(runs["seconds"].sum())
    name = config.name if config is not None else store.meta().get("study", "study")
    planned = len(config.runs()) if config is not None else len(runs)
    lines = [f"# Study `{name}`", ""]
    if config is not None and config.description:
        lines += [config.description.strip(), ""]
    lines += [
        f"- Runs finished: {len(runs)} of {planned} planned; seeds {sorted(results['seed'].unique().tolist())}.",
        f"- Machine time: {machine_seconds / 60:.1f} min summed over runs (mean {runs['seconds'].mean():.1f} s per "
        f"run), over {len(invocations)} invocation(s) of `anchoral run`.",
        f"- Benchmarks: {', '.join(dict.fromkeys(results['benchmark_label']))}; encoder(s): "
        f"{', '.join(dict.fromkeys(results['encoder']))}.",
        f"- Strategies: {', '.join(dict.fromkeys(results['strategy_label']))}; baseline: {baseline}.",
        f"- Reference panel: {len(panel)} fits stored (erm-all, and oracle-balanced (oracle) at each reported "
        "fraction; per seed, plain head), not strategies." if not panel.empty else "- Reference panel: none stored.",
        f"- Model: {', '.join(dict.fromkeys(results['model_label']))}; loop: `{results['loop_config'].iloc[0]}`.",
        f"- Reported fractions of the pool: {', '.join(f'{100 * f:g}%' for f in fractions)}.",
        "",
    ]
    if config is not None:
        lines += [f"Config: `{CONFIG_NAME}` in this directory (loop: `{json.dumps(asdict(config.loop))}`).", ""]
    return lines


def _alvin_markdown(panels: dict[str, pd.DataFrame]) -> str:
    names = {"variants": "variant", "alpha": "Beta (alpha, beta)", "k": "K"}
    body = []
    for key, frame in panels.items():
        for x in dict.fromkeys(frame["x"]):
            cells = [names[key], str(x)]
            for metric in METRIC_LABELS:
                cell = frame[(frame["x"] == x) & (frame["metric"] == metric)]
                mean, std = cell["mean"].iloc[0], cell["std"].iloc[0]
                cells.append(f"{100 * mean:.1f}" + ("" if np.isnan(std) else f" ± {100 * std:.1f}"))
            body.append(cells)
    return markdown_table(["panel", "setting"] + [METRIC_LABELS[m] for m in METRIC_LABELS], body)


def _gains_markdown(gains: pd.DataFrame) -> str:
    body = []
    for (benchmark, strategy), rows in gains.groupby(["benchmark", "strategy"], sort=False):
        cells = [benchmark, strategy]
        for metric in METRIC_LABELS:
            row = rows[rows["metric"] == metric]
            cells.append("–" if row.empty else f"{100 * row['gain_mean'].iloc[0]:+.1f} ± {100 * row['gain_ci95'].iloc[0]:.1f}")
        body.append(cells)
    return markdown_table(["benchmark", "strategy"] + [f"{METRIC_LABELS[m]} gain (pts, 95% CI)" for m in METRIC_LABELS],
                          body)


def _rho_markdown(points: pd.DataFrame) -> str:
    metrics = [m for m in (*METRIC_LABELS, "minority_upsampling") if m in set(points["metric"])]
    body = []
    for (rho, strategy), rows in points.groupby(["rho", "strategy"], sort=True):
        cells = [f"{rho:g}", strategy]
        for metric in metrics:
            row = rows[rows["metric"] == metric]
            if row.empty:
                cells.append("–")
            elif metric == "minority_upsampling":
                cells.append(f"{row['gain_mean'].iloc[0]:.2f}")
            else:
                cells.append(f"{100 * row['gain_mean'].iloc[0]:+.1f} ± {100 * row['gain_ci95'].iloc[0]:.1f}")
        body.append(cells)
    header = ["rho", "strategy"] + [("minority upsampling" if m == "minority_upsampling"
                                     else f"{METRIC_LABELS[m]} gain (pts)") for m in metrics]
    return markdown_table(header, body)


def _per_benchmark_section(title: str, intro: str, frame, benchmarks, render) -> list[str]:
    """A report section with one table per benchmark present in ``frame`` (nothing if it is empty)."""
    if frame.empty:
        return []
    lines = [f"## {title}", "", intro, ""]
    present = set(frame["benchmark"])
    for benchmark in benchmarks:
        if benchmark in present:
            lines += [f"### {benchmark}", "", render(frame, benchmark), ""]
    return lines
