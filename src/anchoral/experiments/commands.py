"""The ``run`` and ``report`` commands. ``register(app)`` adds them to a Typer app."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console


def register(app: typer.Typer) -> None:
    """Add ``run CONFIG.toml`` and ``report RUN_DIR`` to ``app``."""
    app.command("run")(run)
    app.command("report")(report)


def run(
    config: Path = typer.Argument(..., help="Study config (TOML); see configs/ for one per paper table or figure."),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="Runs in parallel, one worker process each."),
    out: Optional[Path] = typer.Option(None, "--out", "-o",
                                       help="Run directory (default: runs/<study name>). Rerun to resume."),
    make_report: bool = typer.Option(True, "--report/--no-report", help="Write the report when every run is done."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the progress bar."),
    device: Optional[str] = typer.Option(
        None, "--device",
        help="Device of models left at device='auto' (model = \"finetune\"): cpu, cuda or cuda:N. Not part of a run's identity: "
             "a resumed study may continue on another device."),
    executor: Optional[str] = typer.Option(
        None, "--executor",
        help="Where pool encoding, prediction and search run: local (this process) or ray. Overrides the config's "
             "execution backend; results are the same either way (docs/scale.md)."),
    ray_address: Optional[str] = typer.Option(
        None, "--ray-address",
        help="With --executor ray: an existing cluster ('auto', 'HOST:6379' or 'ray://HOST:10001'); "
             "default: start a local Ray instance."),
    ray_num_cpus: Optional[int] = typer.Option(
        None, "--ray-num-cpus", min=1, help="With --executor ray and no address: CPUs of the local Ray instance."),
):
    """Run a study's grid of runs; resumable: a rerun skips the runs already stored."""
    from anchoral.experiments.config import load_config
    from anchoral.experiments.runner import run_study
    from anchoral.experiments.study_report import write_study_report
    from anchoral.models import use_device

    use_device(device)

    console = Console()
    study = load_config(config)
    study = with_execution(study, executor, ray_address, ray_num_cpus)
    try:
        summary = run_study(study, out, jobs=jobs, progress=progress, console=console)
    except KeyboardInterrupt:
        console.print("interrupted: every finished run is stored; rerun the same command to resume")
        raise typer.Exit(130) from None
    console.print(f"{summary.n_completed} run(s) finished in {summary.seconds:.0f} s, {summary.n_skipped} skipped; "
                  f"results in {summary.run_dir}")
    if make_report:
        path = write_study_report(summary.run_dir)
        console.print(f"report: {path}")


def with_execution(study, backend: str | None, address: str | None, num_cpus: int | None):
    """``study`` with its [execution] table overridden by --executor, --ray-address and --ray-num-cpus
    (a Ray option alone implies --executor ray; the config's values fill in what the command omits)."""
    import dataclasses

    from anchoral.experiments.config import ConfigError, parse_execution

    if backend is None and address is None and num_cpus is None:
        return study
    backend = backend or "ray"
    options = {"backend": backend}
    if study.execution.backend == backend:
        options.update(address=study.execution.address, num_cpus=study.execution.num_cpus)
    if address is not None:
        options.update(address=address, num_cpus=num_cpus)
    elif num_cpus is not None:
        options["num_cpus"] = num_cpus
    try:
        execution = parse_execution({key: value for key, value in options.items() if value is not None})
    except ConfigError as exc:
        raise typer.BadParameter(f"{exc} (from --executor, --ray-address, --ray-num-cpus and the config)",
                                 param_hint="--executor") from None
    return dataclasses.replace(study, execution=execution)


def report(
    run_dir: Path = typer.Argument(..., help="A run directory written by `anchoral run`."),
    probe: str = typer.Option("linear", "--probe", help="MDL probe of the shortcut-extractability table: linear or mlp."),
    map_: Optional[bool] = typer.Option(
        None, "--map/--no-map",
        help="Require the map of acquisitions (an error if the directory stored no representations); "
             "default: drawn when it can be."),
    map_seed: Optional[int] = typer.Option(None, "--map-seed", help="Seed of the runs the map shows (default: the smallest)."),
    map_fraction: Optional[float] = typer.Option(
        None, "--map-fraction", help="Fraction of the pool labeled the map shows (default: the end of the budget)."),
    map_method: str = typer.Option("tsne", "--map-method", help="2-D embedding of the map: tsne, or umap (needs anchoral[map])."),
):
    """Write report.md, tables/*.csv and figures/*.png for a run directory."""
    from anchoral.experiments.study_report import MapRequest, write_study_report

    request = MapRequest(seed=map_seed, fraction=map_fraction, method=map_method, required=map_ is True,
                         draw=map_ is not False)
    path = write_study_report(run_dir, probe=probe, map_request=request)
    Console().print(f"report: {path} (tables in {path.parent / 'tables'}, figures in {path.parent / 'figures'})")
