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
):
    """Run a study's grid of runs; resumable: a rerun skips the runs already stored."""
    from anchoral.experiments.config import load_config
    from anchoral.experiments.runner import run_study
    from anchoral.experiments.study_report import write_study_report
    from anchoral.models import use_device

    use_device(device)

    console = Console()
    study = load_config(config)
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


def report(run_dir: Path = typer.Argument(..., help="A run directory written by `anchoral run`.")):
    """Write report.md, tables/*.csv and figures/*.png for a run directory."""
    from anchoral.experiments.study_report import write_study_report

    path = write_study_report(run_dir)
    Console().print(f"report: {path} (tables in {path.parent / 'tables'}, figures in {path.parent / 'figures'})")
