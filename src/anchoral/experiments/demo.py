"""``anchoral demo``: strategies x seeds on a real spurious-correlation benchmark, with the
reference panel (``references``) on the same benchmark, seeds and model, an
ALVIN-Table-1-style table, results files, a report and a learning-curve plot."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd

from anchoral.data.benchmarks import load_benchmark
from anchoral.errors import ValidationError
from anchoral.experiments.config import params_text
from anchoral.experiments.encoded import EncodedBenchmark, encode_benchmark
from anchoral.experiments.plots import plot_learning_curves
from anchoral.experiments.references import fit_reference, panel_at_fractions, panel_fits, panel_note
from anchoral.experiments.report import (
    METRIC_LABELS,
    checkpoint_summary,
    checkpoint_table,
    checkpoint_table_markdown,
    minority_inference_markdown,
    phase_timing_markdown,
    timing_markdown,
    upsampling_markdown,
)
from anchoral.experiments.simulate import RunSpec, simulate
from anchoral.loop import LoopConfig
from anchoral.progress import progress_bar
from anchoral.strategies import STRATEGIES, available_strategies, default_strategies


@dataclass(frozen=True)
class Recipe:
    """A strategy run with a model of its own (not the demo's model), reported as one row."""

    strategy: str
    model: str
    model_params: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        params = f"({params_text(self.model_params)})" if self.model_params else ""
        return f"{self.strategy} · {self.model}{params}"


# The label-free recipe of the "robust-al" study (docs/studies.md): minority-seeking selection
# and the linear head with DFR on groups inferred without labels, fixed before that study ran,
# and random selection under the same head, which the recipe has to be read against (the
# study found the head doing most of the work). `anchoral demo --no-recipe` leaves both out.
DEFAULT_RECIPES = (Recipe("random", "linear", {"head": "dfr"}), Recipe("minority-seeking", "linear", {"head": "dfr"}))


@dataclass
class DemoConfig:
    benchmark: str = "vader-shortcut"
    benchmark_params: dict = field(default_factory=dict)
    strategies: tuple[str, ...] = ()  # empty = every registered strategy except ablation variants
    seeds: tuple[int, ...] = (0, 1, 2)
    loop: LoopConfig = LoopConfig()
    model_params: dict = field(default_factory=dict)
    model: str = "mlp"
    recipes: tuple[Recipe, ...] = DEFAULT_RECIPES

    def resolved_strategies(self) -> tuple[str, ...]:
        names = tuple(self.strategies) or tuple(default_strategies())
        unknown = [name for name in names if name not in STRATEGIES]
        if unknown:
            raise ValidationError(f"unknown strategy {unknown[0]!r}; expected one of: {', '.join(available_strategies())}")
        if "random" in names:  # the baseline first, so tables read top-down against it
            names = ("random",) + tuple(n for n in names if n != "random")
        return names

    def report_fractions(self) -> tuple[float, ...]:
        """The fractions of the pool the tables report and the oracle-balanced reference is drawn
        at: the loop's fractional checkpoints and budget."""
        return tuple(sorted({f for f in (*self.loop.checkpoints, self.loop.budget) if isinstance(f, float)}))


def run_grid(encoded: EncodedBenchmark, config: DemoConfig, *, progress: bool = True) -> pd.DataFrame:
    """Every (strategy, seed) run, with a progress bar over rounds."""
    strategies = config.resolved_strategies()
    specs = [(name, RunSpec(strategy=name, seed=seed, loop=config.loop, model=config.model,
                            model_params=config.model_params))
             for name in strategies for seed in config.seeds]
    specs += [(recipe.label, RunSpec(strategy=recipe.strategy, seed=seed, loop=config.loop, model=recipe.model,
                                     model_params=dict(recipe.model_params)))
              for recipe in config.recipes for seed in config.seeds]
    rounds_per_run = len(_schedule(encoded, config))
    rows: list[dict] = []
    with progress_bar(progress) as bar:
        task = bar.add_task("active-learning rounds", total=len(specs) * rounds_per_run)
        for label, spec in specs:
            bar.update(task, description=f"{label} seed {spec.seed}")
            rows += [{**row, "strategy": label}
                     for row in simulate(encoded, spec, on_round=lambda record: bar.advance(task))]
    return pd.DataFrame(rows)


def run_panel(encoded: EncodedBenchmark, config: DemoConfig, *, progress: bool = True) -> pd.DataFrame:
    """The reference panel on the demo's benchmark, seeds and model (plain head): per seed,
    erm-all and oracle-balanced at each reported fraction; one row per fit."""
    fits = panel_fits(config.seeds, config.report_fractions())
    rows = []
    with progress_bar(progress) as bar:
        task = bar.add_task("reference panel", total=len(fits))
        for reference, seed, fraction in fits:
            bar.update(task, description=f"reference {reference} seed {seed}")
            rows.append(fit_reference(encoded, reference, config.model, config.model_params, seed, fraction))
            bar.advance(task)
    return pd.DataFrame(rows).assign(benchmark_label=encoded.benchmark.name, model_label=config.model)


def _schedule(encoded: EncodedBenchmark, config: DemoConfig) -> list[int]:
    from anchoral.loop import ActiveLearningLoop
    from anchoral.models import make_model
    from anchoral.strategies import make_strategy

    model = make_model(config.model, encoded.n_classes, **config.model_params)  # bad model options fail here
    for recipe in config.recipes:  # an unknown strategy or model option fails here too
        make_strategy(recipe.strategy)
        make_model(recipe.model, encoded.n_classes, **recipe.model_params)
    loop = ActiveLearningLoop(make_strategy("random"), model, config.loop)
    return loop.plan(len(encoded.benchmark.pool))


def write_report(results: pd.DataFrame, panel: pd.DataFrame, encoded: EncodedBenchmark, config: DemoConfig,
                 run_dir: Path, seconds: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write report.md next to the results; return the checkpoint summaries of the strategies
    and of the reference panel."""
    benchmark = encoded.benchmark
    fractions = config.report_fractions()
    summary = checkpoint_summary(results, fractions)
    panel_summary = panel_at_fractions(panel, fractions, METRIC_LABELS)
    table = checkpoint_table_markdown(summary, panel=panel_summary)
    pool = benchmark.pool
    group_counts = pd.Series(pool.groups).value_counts().sort_index()
    groups_line = ", ".join(f"{benchmark.group_names[g]} {n}" for g, n in group_counts.items())
    lines = [
        f"# anchoral demo: {benchmark.name}",
        "",
        f"Pool {len(pool)} examples ({groups_line}); ID test {len(benchmark.id_test)}; "
        f"OOD test {len(benchmark.ood_test)} (balanced over groups). Benchmark parameters: "
        f"`{json.dumps(benchmark.params, sort_keys=True, default=str)}`.",
        f"Encoder `{encoded.encoder_fingerprint}` (frozen); model `{config.model}` with parameters "
        f"`{json.dumps(config.model_params, sort_keys=True)}`, retrained from the same initial weights every round "
        f"(the MLP head stopped by Tamkin et al.'s loss-ratio rule or the epoch cap).",
        *([f"Recipes (a strategy with a model of its own, one row each): "
           + "; ".join(f"`{recipe.label}`" for recipe in config.recipes) + "."] if config.recipes else []),
        f"Loop: `{json.dumps(asdict(config.loop), default=str)}`; seeds {list(config.seeds)}. "
        f"Total wall time {seconds:.0f} s.",
        "",
        "## Accuracy (%) at fractions of the pool labeled, mean ± std over seeds",
        "",
        table,
        "",
        "Worst-group accuracy is the lowest per-group accuracy on the group-balanced OOD test set.",
        "",
        panel_note("random" in config.strategies),
        "",
        "## Upsampling ratio of each group at the final round (acquired share / pool share; Tamkin et al. Fig. 4)",
        "",
        upsampling_markdown(results),
        "",
        "## Wall time per round",
        "",
        timing_markdown(results),
        "",
    ]
    phases = phase_timing_markdown(results)
    if phases:
        lines += ["## ALVIN selection time by phase (ALVIN Table 6)", "", phases, ""]
    minority = minority_inference_markdown(results)
    if minority:
        lines += ["## Minority inference from training dynamics vs true groups (ALVIN Table 4)", "",
                  "Recall: share of the truly-minority labeled examples the inference flagged; precision: share of "
                  "flagged examples that are truly minority.", "", minority, ""]
    lines += [
        "![learning curves](learning_curves.png)",
        "",
    ]
    (run_dir / "report.md").write_text("\n".join(lines))
    return summary, panel_summary


def run_demo(config: DemoConfig, *, out_dir: str | Path | None = None, progress: bool = True, console=None) -> Path:
    """Run the demo end to end and return the run directory."""
    started = time.perf_counter()
    strategies = config.resolved_strategies()
    benchmark = load_benchmark(config.benchmark, **config.benchmark_params)
    encoded = encode_benchmark(benchmark, progress=progress)
    run_dir = Path(out_dir) if out_dir else Path("runs") / f"{datetime.now():%Y%m%d-%H%M%S}-demo-{benchmark.name}"
    config = DemoConfig(**{**asdict(config), "strategies": strategies, "loop": config.loop,
                           "recipes": tuple(config.recipes)})
    _schedule(encoded, config)  # a budget or seed set the pool cannot hold fails here, before the directory exists
    run_dir.mkdir(parents=True, exist_ok=True)
    results = run_grid(encoded, config, progress=progress)
    panel = run_panel(encoded, config, progress=progress)
    results.to_parquet(run_dir / "results.parquet", index=False)
    panel.to_parquet(run_dir / "reference_panel.parquet", index=False)
    plot_learning_curves(results, run_dir / "learning_curves.png", title=f"{benchmark.name}", panel=panel)
    summary, panel_summary = write_report(results, panel, encoded, config, run_dir, time.perf_counter() - started)
    (run_dir / "config.json").write_text(json.dumps(asdict(config), indent=2, default=str))
    if console is not None:
        console.print(f"\n[bold]{benchmark.name}[/bold]: accuracy (%) at fractions of the pool labeled, "
                      f"mean ± std over {len(config.seeds)} seeds")
        for metric, label in METRIC_LABELS.items():
            console.print(_rich_table(summary, panel_summary, metric, f"{label} accuracy"))
        console.print(panel_note("random" in config.strategies))
    return run_dir


def _rich_table(summary: pd.DataFrame, panel_summary: pd.DataFrame, metric: str, title: str):
    """One metric, a row per strategy and a column per labeled fraction (narrow enough for a
    terminal); the reference panel in a section of its own below the strategies."""
    from rich.table import Table

    fractions = sorted(set(summary["fraction"]) | set(panel_summary["fraction"])) if not summary.empty else []
    header, rows = checkpoint_table(summary, metrics=(metric,), fractions=fractions)
    table = Table(*header, title=title, title_justify="left")
    for row in rows:
        table.add_row(*row)
    table.add_section()
    for row in checkpoint_table(panel_summary, metrics=(metric,), fractions=fractions)[1]:
        table.add_row(*row, style="italic")
    return table
