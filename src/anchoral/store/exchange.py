"""Labels in and out of a project: ``import-labels`` (CSV/JSONL of id,label) and
``export`` (every pool item with its current label and, optionally, the model's
predictions). Imports are checked completely, then written in one transaction.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from anchoral.errors import ValidationError
from anchoral.store.database import write
from anchoral.store.project import Project, append_label_event
from anchoral.store.tabular import SHOWN_ROWS, cell_text, read_table, require_column

EXPORT_FORMATS = ("csv", "jsonl")


@dataclass(frozen=True)
class LabelRow:
    """One label to import; ``where`` says where it came from in the file (for error messages)."""

    where: str
    id: str
    label: str
    annotator: str | None = None


@dataclass(frozen=True)
class ImportReport:
    added: int
    changed: int
    unchanged: int
    skipped: int = 0

    def __str__(self) -> str:
        text = f"{self.added} new label(s), {self.changed} changed, {self.unchanged} unchanged"
        return text + (f", {self.skipped} task(s) without a usable annotation skipped" if self.skipped else "")


def read_label_table(
    path: str | Path, *, fmt: str | None = None, id_column: str = "id", label_column: str = "label", encoding: str = "utf-8"
) -> list[LabelRow]:
    """Rows of a CSV/TSV/JSONL/Parquet file with an id and a label column (and optionally "annotator")."""
    path = Path(path)
    frame = read_table(path, fmt, encoding=encoding)
    require_column(frame, id_column, "--id-column", path.name)
    require_column(frame, label_column, "--label-column", path.name)
    annotators = frame["annotator"] if "annotator" in frame.columns else [None] * len(frame)
    rows = []
    for number, (raw_id, raw_label, raw_annotator) in enumerate(zip(frame[id_column], frame[label_column], annotators), start=1):
        item_id, label = cell_text(raw_id) or "", cell_text(raw_label) or ""
        rows.append(LabelRow(f"row {number}", item_id.strip(), label.strip(), cell_text(raw_annotator)))
    return rows  # rows with an empty id or label are reported by import_labels, with every other problem


def import_labels(project: Project, rows: Iterable[LabelRow], *, annotator: str, source: str, skipped: int = 0) -> ImportReport:
    """Check every row (an id and a label, known id, declared label, no conflicting repeats),
    then write them in one transaction. Every kind of problem found is reported in one
    ValidationError (up to five examples of each); nothing is written then.

    A row giving an item the label it already has records nothing; a different
    label supersedes the current one (the history keeps both).
    """
    rows = list(rows)
    problems = []
    empty = [row for row in rows if not row.id or not row.label]
    if empty:
        shown = ", ".join(row.where for row in empty[:SHOWN_ROWS]) + (", ..." if len(empty) > SHOWN_ROWS else "")
        problems.append(f"{len(empty)} row(s) with an empty id or label ({shown}); fix or remove them")
    rows = [row for row in rows if row.id and row.label]
    positions = project.positions_of(row.id for row in rows)
    unknown_ids = [row for row in rows if row.id not in positions]
    if unknown_ids:
        shown = ", ".join(f"{row.id!r} ({row.where})" for row in unknown_ids[:SHOWN_ROWS])
        problems.append(f"{len(unknown_ids)} id(s) are not in the project's pool: {shown}")
    bad_labels = [row for row in rows if row.label not in project.labels]
    if bad_labels:
        shown = ", ".join(f"{row.label!r} ({row.where})" for row in bad_labels[:SHOWN_ROWS])
        problems.append(f"{len(bad_labels)} label(s) outside the project's label set [{', '.join(project.labels)}]: {shown}")
    first: dict[str, LabelRow] = {}
    chosen: dict[str, LabelRow] = {}
    conflicts = []
    for row in rows:
        earlier = first.setdefault(row.id, row)
        if earlier.label != row.label:
            conflicts.append(f"{row.id!r} ({earlier.label!r} at {earlier.where}, {row.label!r} at {row.where})")
        chosen[row.id] = row
    if conflicts:
        shown = ", ".join(conflicts[:SHOWN_ROWS]) + (", ..." if len(conflicts) > SHOWN_ROWS else "")
        problems.append(f"{len(conflicts)} id(s) given two different labels: {shown}")
    if problems:
        raise ValidationError("nothing imported: " + "; ".join(problems))
    current = {position: row["class"] for position, row in project.labeled_rows().items()}
    added = changed = unchanged = 0
    with write(project.db):
        for row in chosen.values():
            position, cls = positions[row.id], project.labels.index(row.label)
            if current.get(position) == cls:
                unchanged += 1
                continue
            added, changed = (added + 1, changed) if position not in current else (added, changed + 1)
            append_label_event(project.db, position, cls, row.annotator or annotator, source, None)
    return ImportReport(added, changed, unchanged, skipped)


def export_rows(project: Project, probabilities: np.ndarray | None = None) -> list[dict]:
    """One dict per pool item: id, text, label (None if unlabeled), annotator, labeled_at,
    and with ``probabilities`` (n_items, n_classes): predicted, confidence and prob_<label>."""
    labeled = project.labeled_rows()
    rows = []
    for position, (item_id, text) in enumerate(zip(project.ids(), project.texts())):
        current = labeled.get(position)
        row = {
            "id": item_id,
            "text": text,
            "label": None if current is None else project.labels[current["class"]],
            "annotator": None if current is None else current["annotator"],
            "labeled_at": None if current is None else current["created_at"],
        }
        if probabilities is not None:
            probs = probabilities[position]
            row["predicted"] = project.labels[int(np.argmax(probs))]
            row["confidence"] = round(float(np.max(probs)), 6)
            row.update({f"prob_{name}": round(float(p), 6) for name, p in zip(project.labels, probs)})
        rows.append(row)
    return rows


def render(rows: list[dict], fmt: str) -> str:
    """The rows as CSV (empty cell = no label) or JSON lines (null = no label)."""
    if fmt not in EXPORT_FORMATS:
        raise ValidationError(f"unknown export format {fmt!r}; expected one of: {', '.join(EXPORT_FORMATS)}")
    if fmt == "jsonl":
        return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["id", "text", "label"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_text(text: str, output: Path | None) -> None:
    """Write to ``output`` atomically (temporary file, then rename), or to stdout when None."""
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    output = Path(output)
    if output.parent and not output.parent.exists():
        raise ValidationError(f"cannot write {output}: directory {output.parent} does not exist")
    if output.is_dir():
        raise ValidationError(f"cannot write {output}: it is a directory; give a file name")
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.parent or ".")
    except OSError as exc:
        raise ValidationError(f"cannot write {output}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as file:
            file.write(text)
        os.replace(temporary, output)
    except OSError as exc:
        raise ValidationError(f"cannot write {output}: {exc.strerror or exc}") from exc
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
