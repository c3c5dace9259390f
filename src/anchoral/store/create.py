"""``anchoral init``: check a data file completely, then write a new project atomically.

Nothing is written until every check has passed; the database is then built in a
temporary file inside the project directory and renamed to ``project.sqlite`` only
once it is complete, so a failure (or a kill) never leaves a half-made project.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from anchoral import __version__
from anchoral.data.archives import sha256_of
from anchoral.store.database import (
    PROJECT_FILE,
    ProjectError,
    connect,
    create_schema,
    utc_now,
    write,
)
from anchoral.store.overlap import check_overlap
from anchoral.store.project import OVERLAP_KEY, Project, append_label_event
from anchoral.store.tabular import Table, check_label_set, check_table, read_table
from anchoral.validation import check_positive_int

DEFAULT_STRATEGY = "alvin"
DEFAULT_BATCH_SIZE = 50
TEMPORARY_PREFIX, TEMPORARY_SUFFIX = ".project-", ".sqlite.tmp"
LEFTOVER_AGE_SECONDS = 60.0  # an interrupted init's files; a running init keeps writing its own


@dataclass(frozen=True)
class DataSpec:
    """Where the pool comes from and how to read it."""

    path: Path
    text_column: str
    id_column: str | None = None
    label_column: str | None = None
    format: str | None = None
    encoding: str = "utf-8"


def _check_strategy(name: str) -> str:
    from anchoral.errors import unknown_name
    from anchoral.strategies import STRATEGIES

    if name not in STRATEGIES:
        raise unknown_name("strategy", name, STRATEGIES)
    return name


def _check_model(name: str, params: dict | None, n_classes: int) -> dict:
    """Build the model once (cheap: weights load lazily) so a bad name or parameter fails before anything is written."""
    from anchoral.models import make_model

    params = dict(params or {})
    make_model(name, n_classes, seed=0, **params)
    return params


def init_project(
    directory: str | Path,
    data: DataSpec,
    labels,
    *,
    heldout: Path | None = None,
    heldout_label_column: str | None = None,
    strategy: str = DEFAULT_STRATEGY,
    batch_size: int = DEFAULT_BATCH_SIZE,
    seed: int = 0,
    model: str = "mlp",
    model_params: dict | None = None,
    overlap: float = 0.0,
    overlap_k: int = 2,
    review_by: str = "owner",
) -> Project:
    """Create a project in ``directory`` from ``data`` and return it open.

    ``labels`` is the declared label set (its order fixes the class ids and the
    web app's keys 1..9). Rows of ``data.label_column`` that carry a label become
    initial labels (source "init", annotator "file:<name>"). ``heldout`` is an optional labeled file with
    the same text column, used only to measure the model (the learning curve); its
    labels are read from ``heldout_label_column`` (default: the data's label column,
    else "label"). ``model`` and ``model_params`` choose the model trained each round
    (``"mlp"``: a head over frozen MiniLM features; ``"finetune"``: the whole transformer).
    ``overlap`` of each batch is shown to ``overlap_k`` distinct labelers, whose
    disagreements ``review_by`` ("owner" or "labelers") resolves (see ``overlap``; nobody
    is invited yet, so k is not checked against the labelers here).
    """
    directory = Path(directory)
    labels = check_label_set(labels)
    batch_size = check_positive_int(batch_size, "batch_size")
    overlap_setting = check_overlap(overlap, overlap_k, review_by)
    if directory.exists() and not directory.is_dir():
        raise ProjectError(f"{directory} exists and is a file; choose a directory for the project")
    if (directory / PROJECT_FILE).exists():
        raise ProjectError(f"{directory} is already an anchoral project; choose another directory or delete it first")
    if directory.is_dir():
        remove_leftovers(directory)
        others = sorted(entry.name for entry in directory.iterdir())
        if others:
            shown = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
            raise ProjectError(
                f"{directory} is not empty (it holds {shown}); give a new or empty directory for the project"
            )

    data_path = Path(data.path)
    pool = check_table(
        read_table(data_path, data.format, encoding=data.encoding),
        source=data_path.name,
        text_column=data.text_column,
        labels=labels,
        id_column=data.id_column,
        label_column=data.label_column,
    )
    held = None
    if heldout is not None:
        heldout = Path(heldout)
        frame = read_table(heldout, encoding=data.encoding)
        held = check_table(
            frame,
            source=heldout.name,
            text_column=data.text_column,
            labels=labels,
            id_column=data.id_column if data.id_column in frame.columns else None,
            label_column=heldout_label_column or data.label_column or "label",
            labels_required=True,
        )
    strategy = _check_strategy(strategy)  # after the file checks: these import the model stack (seconds)
    model_params = _check_model(model, model_params, len(labels))
    settings = {
        "data_file": data_path.name,
        "data_sha256": sha256_of(data_path),
        "text_column": data.text_column,
        "id_column": data.id_column,
        "label_column": data.label_column,
        "heldout_file": None if heldout is None else heldout.name,
        "strategy": strategy,
        "batch_size": batch_size,
        "seed": int(seed),
        "model": model,
        "model_params": model_params,
        "encoder": "minilm",
        "created_at": utc_now(),
        "created_by": f"anchoral {__version__}",
        OVERLAP_KEY: asdict(overlap_setting),
    }
    _write_atomically(directory, labels, pool, held, settings)
    return Project.open(directory)


def create_project(directory: str | Path, labels, pool: Table, settings: dict, *, annotator: str) -> Project:
    """Write a new project from an already-checked ``pool`` (the Python API's ``save``) and
    return it open; the labeled rows of ``pool`` are recorded as given by ``annotator``.
    Atomic like ``init_project``: a failure leaves no project behind."""
    directory = Path(directory)
    labels = check_label_set(labels)
    if directory.exists() and not directory.is_dir():
        raise ProjectError(f"{directory} exists and is a file; choose a directory for the project")
    if (directory / PROJECT_FILE).exists():
        raise ProjectError(f"{directory} is already an anchoral project; choose another directory or delete it first")
    _write_atomically(directory, labels, pool, None, {**settings, "initial_annotator": annotator})
    return Project.open(directory)


def remove_leftovers(directory: Path, *, older_than: float = LEFTOVER_AGE_SECONDS) -> list[Path]:
    """Delete the temporary database files (and their journals) of an init that was killed
    in ``directory``: only ours (``.project-*.sqlite.tmp*``) and only those untouched for
    ``older_than`` seconds. Returns what was removed."""
    removed = []
    now = time.time()
    for path in directory.glob(f"{TEMPORARY_PREFIX}*{TEMPORARY_SUFFIX}*"):
        tail = path.name.split(TEMPORARY_SUFFIX, 1)[1]
        if tail not in ("", "-wal", "-shm", "-journal") or not path.is_file():
            continue
        try:
            if now - path.stat().st_mtime >= older_than:
                path.unlink()
                removed.append(path)
        except FileNotFoundError:
            continue
    return removed


def _write_atomically(directory: Path, labels: tuple[str, ...], pool: Table, held: Table | None, settings: dict) -> None:
    created_directory = not directory.exists()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=TEMPORARY_PREFIX, suffix=TEMPORARY_SUFFIX, dir=directory)
    except OSError as exc:
        raise ProjectError(f"cannot create the project in {directory}: {exc.strerror or exc}") from exc
    os.close(handle)
    try:
        connection = connect(Path(temporary), create=True)
        try:
            with write(connection):
                _fill(connection, labels, pool, held, settings)
            connection.execute("PRAGMA journal_mode = WAL")
        finally:
            connection.close()
        with open(temporary, "rb+") as file:
            os.fsync(file.fileno())
        os.replace(temporary, directory / PROJECT_FILE)
        _fsync_directory(directory)
    except BaseException:
        for leftover in (temporary, temporary + "-wal", temporary + "-shm", temporary + "-journal"):
            if os.path.exists(leftover):
                os.unlink(leftover)
        if created_directory and not any(directory.iterdir()):
            directory.rmdir()
        raise


def _fill(connection, labels: tuple[str, ...], pool: Table, held: Table | None, settings: dict) -> None:
    create_schema(connection)
    connection.executemany("INSERT INTO settings (key, value) VALUES (?, ?)", [(k, json.dumps(v)) for k, v in settings.items()])
    connection.executemany("INSERT INTO label_set (class, name) VALUES (?, ?)", list(enumerate(labels)))
    connection.executemany(
        "INSERT INTO items (position, id, text) VALUES (?, ?, ?)", list(zip(range(len(pool.ids)), pool.ids, pool.texts))
    )
    if held is not None:
        connection.executemany(
            "INSERT INTO heldout_items (position, id, text, class) VALUES (?, ?, ?, ?)",
            list(zip(range(len(held.ids)), held.ids, held.texts, held.classes)),
        )
    annotator = settings.get("initial_annotator") or f"file:{settings['data_file']}"
    for position, cls in enumerate(pool.classes):
        if cls is not None:
            append_label_event(connection, position, cls, annotator, "init", None)


def _fsync_directory(directory: Path) -> None:
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)

