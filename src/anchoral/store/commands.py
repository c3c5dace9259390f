"""The labeling-project commands: init, query, import-labels, export, status, serve, invite, overlap.

Thin: parse, call ``anchoral.store`` / ``anchoral.serve``, print. Data goes to
stdout (``export`` without ``--output``); progress bars and notes go to stderr.
``register(app)`` adds the commands to a typer app.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from anchoral.errors import ValidationError
from anchoral.validation import parse_key_values
from anchoral.store.database import ProjectError
from anchoral.store.project import Project

console = Console(soft_wrap=True)
notes = Console(stderr=True, soft_wrap=True)

PROJECT_ARGUMENT = typer.Argument(..., help="Project directory (made by `anchoral init`).")


@contextmanager
def open_project(path: Path) -> Iterator[Project]:
    """Open a project for one command; database failures become one clear ProjectError."""
    project = Project.open(path)
    try:
        yield project
    except sqlite3.IntegrityError:
        raise
    except sqlite3.DatabaseError as exc:
        raise ProjectError(f"{path}: the project database failed: {exc}") from exc
    finally:
        project.close()


@contextmanager
def progress_reporter(enabled: bool):
    """A ``progress(stage, done, total)`` callback drawing one bar per stage on stderr."""
    if not enabled:
        yield lambda stage, done, total: None
        return
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=notes) as bar:
        tasks: dict[str, int] = {}

        def report(stage: str, done: int, total: int) -> None:
            if stage == "done":
                return
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield report


def _split_labels(value: str) -> list[str]:
    return [part.strip() for part in value.split(",")]


def _counts(counts: dict[str, int]) -> str:
    """Counts per label, markup-escaped (a label may contain brackets)."""
    return escape(", ".join(f"{name}: {count}" for name, count in counts.items()))


def init(
    project: Path = typer.Argument(..., help="Directory to create (or an empty one)."),
    data: Path = typer.Option(..., "--data", help="CSV, TSV, JSONL or Parquet file of texts to label."),
    text_column: str = typer.Option(..., "--text-column", help="Column holding the text."),
    labels: str = typer.Option(..., "--labels", help="Comma-separated label set, e.g. positive,negative (keys 1..9 follow this order)."),
    label_column: str | None = typer.Option(None, "--label-column", help="Column of labels already given (empty cells = unlabeled)."),
    id_column: str | None = typer.Option(None, "--id-column", help="Column of unique ids (default: the row number, from 1)."),
    data_format: str | None = typer.Option(None, "--format", help="csv, tsv, jsonl or parquet, when the extension does not say."),
    encoding: str = typer.Option("utf-8", "--encoding", help="Text encoding of a CSV/TSV/JSONL file (and of --heldout), e.g. latin-1 or cp1252."),
    heldout: Path | None = typer.Option(None, "--heldout", help="Labeled file (same text column) to measure the model on each round."),
    heldout_label_column: str | None = typer.Option(None, "--heldout-label-column", help="Label column of --heldout (default: --label-column, else 'label')."),
    strategy: str = typer.Option("alvin", "--strategy", help="Query strategy of every round (see `anchoral strategies`)."),
    batch_size: int = typer.Option(50, "--batch-size", help="Items per batch."),
    seed: int = typer.Option(0, "--seed", help="Seed of the model's initial weights and of the selection."),
    model: str = typer.Option("mlp", "--model", help="Model trained each round: mlp (a head over frozen MiniLM features, fast) or finetune (the whole transformer; see docs/finetune.md)."),
    model_param: list[str] = typer.Option([], "--model-param", help="Model parameter KEY=VALUE (repeatable), e.g. max_epochs=10."),
    overlap: float = typer.Option(0.0, "--overlap", help="Share of each batch shown to several labelers, to measure their agreement (0 to 1; default 0: off)."),
    overlap_k: int = typer.Option(2, "--overlap-k", help="How many different labelers see each overlap item (at least 2)."),
    review_by: str = typer.Option("owner", "--review-by", help="Who resolves the labelers' disagreements in the web app: owner (the project's own link) or labelers (invited labelers too)."),
):
    """Create a labeling project from a table of texts (checked completely before anything is written)."""
    from anchoral.store.create import DataSpec, init_project

    spec = DataSpec(path=data, text_column=text_column, id_column=id_column, label_column=label_column, format=data_format,
                    encoding=encoding)
    created = init_project(
        project, spec, _split_labels(labels), heldout=heldout, heldout_label_column=heldout_label_column,
        strategy=strategy, batch_size=batch_size, seed=seed,
        model=model, model_params=parse_key_values(model_param, "--model-param"),
        overlap=overlap, overlap_k=overlap_k, review_by=review_by,
    )
    with created:
        counts = created.label_counts()
        held = created.heldout()
        console.print(
            f"Created project [bold]{escape(str(project))}[/bold]: {created.pool_size} items, {sum(counts.values())} labeled "
            f"({_counts(counts)}); strategy {escape(strategy)}, batch size {batch_size}, model {escape(model)}"
            + (f"; held-out set of {len(held[0])}" if held else "")
            + (f"; overlap: {created.overlap().describe()}" if created.overlap().enabled else "")
        )
    console.print(f"Next: [bold]anchoral query {escape(str(project))}[/bold] selects the first batch.")


def query(
    project: Path = PROJECT_ARGUMENT,
    strategy: str | None = typer.Option(None, "--strategy", help="Strategy for this round (default: the project's)."),
    n: int | None = typer.Option(None, "--n", help="Batch size for this round (default: the project's)."),
    param: list[str] = typer.Option([], "--param", "-p", help="Strategy parameter KEY=VALUE (repeatable)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
    device: str | None = typer.Option(None, "--device", help="Device of a fine-tuned model: cpu, cuda or cuda:N (default: CUDA when available)."),
):
    """Train on the current labels, select the next batch and record the round."""
    from anchoral.models import use_device
    from anchoral.store.rounds import run_round

    use_device(device)
    with open_project(project) as opened, progress_reporter(progress) as report:
        result = run_round(opened, strategy=strategy, n=n, params=parse_key_values(param), progress=report)
    if result.fallback:
        notes.print(f"[yellow]note:[/yellow] {escape(result.fallback)}")
    trained = result.metrics.get("fit")
    heldout = result.metrics.get("heldout")
    console.print(
        f"Round {result.round}: {result.strategy} selected {len(result.selected_ids)} items in {result.seconds:.1f} s"
        + (f" (model trained on {result.metrics['n_labeled']} labels)" if trained else "")
        + (f"; held-out accuracy {heldout['accuracy']:.3f}" if heldout else "")
    )
    console.print(
        f"Label them in the browser ([bold]anchoral serve {escape(str(project))}[/bold]) or in Label Studio "
        f"([bold]anchoral export {escape(str(project))} --format label-studio -o batch.json[/bold])."
    )


def import_labels(
    project: Path = PROJECT_ARGUMENT,
    file: Path = typer.Argument(..., help="CSV/TSV/JSONL/Parquet of id,label (optional annotator column), or a Label Studio JSON export."),
    file_format: str | None = typer.Option(None, "--format", help="csv, tsv, jsonl, parquet or label-studio (default: from the extension; .json = label-studio)."),
    annotator: str = typer.Option("import", "--annotator", help="Annotator recorded for rows without an annotator column."),
    id_column: str = typer.Option("id", "--id-column", help="Id column of a table."),
    label_column: str = typer.Option("label", "--label-column", help="Label column of a table."),
    encoding: str = typer.Option("utf-8", "--encoding", help="Text encoding of a CSV/TSV/JSONL table, e.g. latin-1 or cp1252."),
):
    """Import labels (every row is checked first; all are written in one transaction)."""
    from anchoral.store import labelstudio
    from anchoral.store.exchange import import_labels as write_labels
    from anchoral.store.exchange import read_label_table

    is_label_studio = file_format == "label-studio" or (file_format is None and file.suffix.lower() == ".json")
    if is_label_studio:
        rows, skipped = labelstudio.read_export(file)
        source = "label-studio"
    else:
        rows = read_label_table(file, fmt=file_format, id_column=id_column, label_column=label_column, encoding=encoding)
        skipped = 0
        source = "import"
    with open_project(project) as opened:
        report = write_labels(opened, rows, annotator=annotator, source=source, skipped=skipped)
        counts = opened.label_counts()
    console.print(f"Imported {escape(file.name)}: {report}. Labels now: {_counts(counts)}")


def export(
    project: Path = PROJECT_ARGUMENT,
    export_format: str = typer.Option("csv", "--format", help="csv or jsonl (every pool item), or label-studio (a batch as tasks)."),
    output: Path | None = typer.Option(None, "--output", "-o", help="File to write (default: stdout)."),
    predictions: bool = typer.Option(False, "--predictions", help="csv/jsonl: add the predictions of a model trained on the current labels."),
    round_number: int | None = typer.Option(None, "--round", help="label-studio: the round whose batch to export (default: the latest)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars (only when writing to a file)."),
    device: str | None = typer.Option(None, "--device", help="Device of a fine-tuned model: cpu, cuda or cuda:N (default: CUDA when available)."),
):
    """Write the labels (and predictions) of the whole pool, or a batch as Label Studio tasks."""
    from anchoral.store import exchange, labelstudio

    if device is not None:  # the model stack (torch) is imported only when a model is needed
        from anchoral.models import use_device

        use_device(device)
    if export_format not in (*exchange.EXPORT_FORMATS, "label-studio"):
        raise ValidationError(f"unknown export format {export_format!r}; expected one of: csv, jsonl, label-studio")
    with open_project(project) as opened:
        if export_format == "label-studio":
            tasks = labelstudio.batch_tasks(opened, round_number)
            exchange.write_text(json.dumps(tasks, ensure_ascii=False, indent=1) + "\n", output)
            notes.print(f"{len(tasks)} tasks written. Label Studio labeling config:\n{escape(labelstudio.labeling_config(opened.labels))}")
            return
        probabilities = None
        if predictions:
            from anchoral.store.rounds import pool_probabilities

            with progress_reporter(progress and output is not None) as report:
                probabilities = pool_probabilities(opened, progress=report)
        rows = exchange.export_rows(opened, probabilities)
    exchange.write_text(exchange.render(rows, export_format), output)
    if output is not None:
        notes.print(f"{len(rows)} items written to {escape(str(output))}")


def status(
    project: Path = PROJECT_ARGUMENT,
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
):
    """Counts per label, the rounds so far, the last round's metrics, and the labelers' agreement."""
    from anchoral.store.review import agreement_report

    with open_project(project) as opened:
        counts = opened.label_counts()
        rounds = opened.rounds()
        batch = opened.batch_progress()
        per_round = opened.labeled_per_round()
        summary = {
            "project": str(opened.directory),
            "pool_size": opened.pool_size,
            "labels": list(opened.labels),
            "label_counts": counts,
            "labeled": sum(counts.values()),
            "strategy": opened.settings["strategy"],
            "batch_size": opened.settings["batch_size"],
            "rounds": len(rounds),
            "current_batch": {"round": batch.round, "labeled": batch.labeled, "in_review": batch.in_review,
                              "total": batch.total},
            "last_metrics": rounds[-1].metrics if rounds else None,
            "overlap": opened.overlap().as_dict(),
            "agreement": agreement_report(opened),
        }
        overlap_line = opened.overlap().describe()
    if as_json:
        console.print_json(json.dumps(summary))
        return
    console.print(
        f"[bold]{escape(summary['project'])}[/bold]: {summary['pool_size']} items, {summary['labeled']} labeled; "
        f"strategy {summary['strategy']}, batch size {summary['batch_size']}"
    )
    labels = Table("label", "count")
    for name, count in counts.items():
        labels.add_row(escape(name), str(count))
    console.print(labels)
    if not rounds:
        console.print("No rounds yet: `anchoral query` selects the first batch.")
        if summary["overlap"]["fraction"] > 0:
            console.print(f"Overlap: {escape(overlap_line)}")
        return
    table = Table("round", "trained on", "held-out acc", "batch", "seconds")
    table.add_column("strategy", no_wrap=True)
    for info in rounds:
        heldout = info.metrics.get("heldout")
        labeled, total = per_round.get(info.round, (0, 0))
        table.add_row(
            str(info.round), str(info.n_labeled), f"{heldout['accuracy']:.3f}" if heldout else "-",
            f"{labeled}/{total}", f"{info.metrics.get('timings', {}).get('total_seconds', 0):.1f}", info.strategy,
        )
    console.print(table)
    console.print(
        f"Current batch (round {batch.round}): {batch.labeled} of {batch.total} labeled"
        + (f", {batch.in_review} in review" if batch.in_review else "")
    )
    last = rounds[-1].metrics
    if last.get("fallback"):
        console.print(f"Last round: {escape(last['fallback'])}")
    if summary["overlap"]["fraction"] > 0 or summary["agreement"]["review"]["overlap_items"]:
        _print_agreement(overlap_line, summary["agreement"])


def _statistic(entry: dict, form: str = "{:.3f}") -> str:
    """A statistic for people: its value, or a dash with the reason it is undefined."""
    return form.format(entry["value"]) if entry["value"] is not None else f"- ({entry['reason']})"


def _print_agreement(overlap_line: str, report: dict) -> None:
    from anchoral.store.agreement import KAPPA_NAMES

    console.print(f"Overlap: {escape(overlap_line)}")
    review = report["review"]
    if report["items"]:
        console.print(
            f"Agreement on {report['items']} item(s) labeled by two or more labelers ({escape(', '.join(report['raters']))}): "
            f"{KAPPA_NAMES[report['statistic']]} {escape(_statistic(report['kappa']))}, "
            f"percent agreement {escape(_statistic(report['percent_agreement'], '{:.1%}'))}"
        )
        per_label = Table("label", "ratings", "kappa", "specific agreement")
        for name, entry in report["per_label"].items():
            per_label.add_row(escape(name), str(entry["ratings"]), escape(_statistic(entry["kappa"])),
                              escape(_statistic(entry["specific_agreement"])))
        console.print(per_label)
    else:
        console.print(f"Agreement: none yet ({escape(report['kappa']['reason'])})")
    console.print(
        f"Review: {review['in_review']} disagreement(s) to resolve, {review['resolved']} resolved, "
        f"{review['agreed']} agreed, {review['waiting']} overlap item(s) still being labeled"
    )


def serve(
    project: Path = PROJECT_ARGUMENT,
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind (default: this machine only; 0.0.0.0 for teammates)."),
    port: int = typer.Option(8765, "--port", help="Port to listen on."),
    token: str | None = typer.Option(None, "--token", help="Access token for this run (default: the project's own, kept across restarts)."),
    new_token: bool = typer.Option(False, "--new-token", help="Replace the project's access token (every earlier link stops working)."),
    owner_only_next_batch: bool = typer.Option(False, "--owner-only-next-batch", help="Only the project's token (not invited labelers' links) may start the next batch."),
    lease_minutes: float = typer.Option(2.0, "--lease-minutes", help="How long an item shown to one annotator stays reserved for them once their page stops renewing it (an open page renews it)."),
    device: str | None = typer.Option(None, "--device", help="Device of a fine-tuned model: cpu, cuda or cuda:N (default: CUDA when available)."),
):
    """Serve the annotation web app for the project."""
    if not lease_minutes > 0:
        raise ValidationError(f"--lease-minutes must be a positive number of minutes; got {lease_minutes:g}")
    if token is not None and new_token:
        raise ValidationError("give either --token or --new-token, not both")
    from anchoral.serve.network import LOOPBACK_HOSTS, check_port_free, reachable_hosts

    with open_project(project) as opened:  # a clear error now rather than on the first request
        token = token or opened.access_token(rotate=new_token)
    check_port_free(host, port)  # before printing a link that would not work
    import uvicorn

    from anchoral.serve.app import create_app

    if device is not None:
        from anchoral.models import use_device

        use_device(device)
    app = create_app(project, token=token, lease_seconds=lease_minutes * 60, owner_only_next_batch=owner_only_next_batch)
    if host not in LOOPBACK_HOSTS:
        notes.print(f"[yellow]note:[/yellow] listening on {escape(host)}: anyone who can reach it and has the token can label")
    links = [f"http://{f'[{name}]' if ':' in name else name}:{port}/?token={token}" for name in reachable_hosts(host)]
    console.print(f"Annotate at [bold]{escape(links[0])}[/bold]  (Ctrl+C stops; every label is already saved)")
    for link in links[1:]:
        console.print(f"        or  {escape(link)}")
    uvicorn.run(app, host=host, port=port, log_level="warning")


def invite(
    project: Path = PROJECT_ARGUMENT,
    name: str | None = typer.Argument(None, help="The labeler's name (any script); without it, list the invited labelers."),
    revoke: bool = typer.Option(False, "--revoke", help="Withdraw NAME's link (it stops working at once)."),
    url: str = typer.Option("http://127.0.0.1:8765", "--url", help="Address the app is served at, for the printed link (see `anchoral serve`)."),
):
    """Give a labeler a link of their own (their labels are recorded under their name), list them, or revoke one."""
    with open_project(project) as opened:
        if name is None:
            if revoke:
                raise ValidationError("--revoke needs the NAME of the labeler whose link to withdraw")
            labelers = opened.labelers()
            for invited in labelers:
                console.print(escape(invited))
            if not labelers:
                notes.print(f"nobody is invited yet: `anchoral invite {escape(str(project))} NAME` makes a link")
            return
        if revoke:
            if not opened.revoke(name):
                raise ValidationError(f"{name!r} is not an invited labeler of {project}; invited: {', '.join(opened.labelers()) or 'nobody'}")
            console.print(f"Revoked {escape(name)}'s link.")
            return
        token = opened.invite(name)
    console.print(f"Link for {escape(name)}: {escape(url.rstrip('/'))}/?token={token}")


def overlap(
    project: Path = PROJECT_ARGUMENT,
    fraction: float | None = typer.Argument(None, help="Share of each batch shown to several labelers, 0 to 1 (0 turns overlap off); without it, show the setting."),
    k: int | None = typer.Option(None, "--k", "--overlap-k", help="How many different labelers see each overlap item (at least 2, at most the labelers the project knows)."),
    review_by: str | None = typer.Option(None, "--review-by", help="Who resolves disagreements in the web app: owner (the project's own link) or labelers (invited labelers too)."),
):
    """Show or change the overlap: the share of each batch several labelers label, and who resolves their disagreements."""
    with open_project(project) as opened:
        if fraction is None and k is None and review_by is None:
            setting = opened.overlap()
        else:
            setting = opened.set_overlap(fraction, k, review_by)
    console.print(f"Overlap: {escape(setting.describe())}")
    if setting.enabled:
        notes.print("It applies to the batches selected from now on; items already chosen keep their labelers.")


def register(app: typer.Typer) -> None:
    """Add the labeling-project commands to ``app``."""
    app.command("init")(init)
    app.command("query")(query)
    app.command("import-labels")(import_labels)
    app.command("export")(export)
    app.command("status")(status)
    app.command("serve")(serve)
    app.command("invite")(invite)
    app.command("overlap")(overlap)
