"""Reading a user's table (CSV, TSV, JSONL or Parquet) and checking it before anything is written.

Every check runs on the whole table and reports every offending row it found (the
first few by number), so one run of ``anchoral init`` tells the user all that is
wrong with a file. Rows are numbered from 1 = the first data row (a CSV header is
not counted).
"""

from __future__ import annotations

import codecs
import json
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from anchoral.errors import ValidationError

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
FORMAT_NAMES = ("csv", "tsv", "jsonl", "parquet")
SHOWN_ROWS = 5


def detect_format(path: Path, given: str | None = None) -> str:
    """The table format: ``given`` if set (and known), else from the file's extension."""
    if given is not None and given != "auto":
        if given not in FORMAT_NAMES:
            raise ValidationError(f"unknown table format {given!r}; expected one of: {', '.join(FORMAT_NAMES)}")
        return given
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValidationError(
            f"{path.name}: unknown file format {path.suffix or '(no extension)'!r}; expected a file ending in "
            f"{', '.join(FORMATS)} (or name the format explicitly)"
        )
    return fmt


def check_encoding(encoding: str) -> str:
    """The text encoding's name if Python knows it (utf-8, latin-1, cp1252, ...), else a ValidationError."""
    try:
        return codecs.lookup(encoding).name
    except (LookupError, TypeError):
        raise ValidationError(f"--encoding {encoding!r} is not a text encoding Python knows (e.g. utf-8, latin-1, cp1252)") from None


def read_table(path: str | Path, fmt: str | None = None, *, encoding: str = "utf-8") -> pd.DataFrame:
    """Read a table with every cell kept as read (ids stay text: "007" is not 7).

    CSV, TSV and JSONL are decoded with ``encoding``; a byte that does not decode is
    an error naming the file, its byte offset and the ``--encoding`` option."""
    path = Path(path)
    encoding = check_encoding(encoding)
    if not path.is_file():
        raise ValidationError(f"data file {path} does not exist" if not path.exists() else f"{path} is not a file")
    fmt = detect_format(path, fmt)
    try:
        if fmt in ("csv", "tsv"):
            frame = pd.read_csv(path, sep="," if fmt == "csv" else "\t", dtype=str, keep_default_na=False, na_values=[""],
                                encoding=encoding)
        elif fmt == "jsonl":
            frame = _read_jsonl(path, encoding)
        else:
            frame = pd.read_parquet(path)
    except UnicodeDecodeError as exc:
        raise ValidationError(
            f"{path.name} is not {exc.encoding} text: the byte {exc.object[exc.start:exc.start + 1].hex()} at byte offset "
            f"{_byte_offset(path, exc)} does not decode; give the file's encoding with --encoding (e.g. --encoding latin-1 "
            "or cp1252), or save it as UTF-8"
        ) from exc
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise ValidationError(f"could not read {path.name} as {fmt}: {exc}") from exc
    except Exception as exc:  # pyarrow raises its own error types for a damaged Parquet file
        raise ValidationError(f"could not read {path.name} as {fmt}: {type(exc).__name__}: {exc}") from exc
    if frame.empty:
        raise ValidationError(f"{path.name} has no rows")
    frame.columns = [str(column) for column in frame.columns]
    return frame


def _byte_offset(path: Path, exc: UnicodeDecodeError) -> int:
    """Offset in the file of the first byte that does not decode (a reader's error only knows its chunk)."""
    try:
        path.read_bytes().decode(exc.encoding)
    except UnicodeDecodeError as whole:
        return whole.start
    except LookupError:
        pass
    return exc.start


def _read_jsonl(path: Path, encoding: str = "utf-8") -> pd.DataFrame:
    """One JSON object per line, values kept exactly as parsed (no type or date guessing)."""
    records = []
    with open(path, encoding=encoding) as file:
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValidationError(f"{path.name}: line {number} is not valid JSON ({exc.msg})") from exc
            if not isinstance(record, dict):
                raise ValidationError(f"{path.name}: line {number} is not a JSON object")
            records.append(record)
    return pd.DataFrame.from_records(records)


def cell_text(value) -> str | None:
    """A cell as text, or None when it is missing. Integral floats read as "12", not "12.0"."""
    if value is None:
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer():
            return str(int(value))
    if value is pd.NA or value is pd.NaT:
        return None
    return str(value)


def _rows(numbers) -> str:
    numbers = [int(n) + 1 for n in numbers]
    shown = ", ".join(map(str, numbers[:SHOWN_ROWS]))
    return f"row {shown}" if len(numbers) == 1 else f"rows {shown}" + (", ..." if len(numbers) > SHOWN_ROWS else "")


def require_column(frame: pd.DataFrame, column: str, option: str, source: str) -> None:
    if column not in frame.columns:
        raise ValidationError(
            f"{option} {column!r} is not a column of {source}; its columns are: {', '.join(frame.columns)}"
        )


def check_label_set(labels) -> tuple[str, ...]:
    """The declared label set: at least two distinct, non-empty names, in the given order."""
    names = tuple(str(name).strip() for name in labels)
    if any(not name for name in names):
        raise ValidationError(f"--labels must not contain an empty name; got {list(names)}")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValidationError(f"--labels repeats {', '.join(map(repr, repeated))}; each label must be named once")
    if len(names) < 2:
        raise ValidationError(f"--labels must declare at least two labels (e.g. --labels positive,negative); got {list(names)}")
    return names


@dataclass(frozen=True)
class Table:
    """A checked table: one id and one text per row, and the class of each labeled row."""

    ids: tuple[str, ...]
    texts: tuple[str, ...]
    classes: tuple[int | None, ...]

    @property
    def n_labeled(self) -> int:
        return sum(c is not None for c in self.classes)


def check_table(
    frame: pd.DataFrame,
    *,
    source: str,
    text_column: str,
    labels: tuple[str, ...],
    id_column: str | None = None,
    label_column: str | None = None,
    labels_required: bool = False,
) -> Table:
    """Check ``frame`` and return its ids, texts and classes (None = unlabeled).

    Raises ValidationError naming the column and rows for: a missing column, an
    empty text, an empty or duplicate id, a label outside ``labels`` (or a missing
    label when ``labels_required``).
    """
    require_column(frame, text_column, "--text-column", source)
    if id_column is not None:
        require_column(frame, id_column, "--id-column", source)
    if label_column is not None:
        require_column(frame, label_column, "--label-column", source)

    texts = [cell_text(value) for value in frame[text_column]]
    empty_texts = [row for row, text in enumerate(texts) if text is None or not text.strip()]
    if empty_texts:
        raise ValidationError(
            f"{source}: {len(empty_texts)} empty text(s) in column {text_column!r} at {_rows(empty_texts)}; "
            "fill them in or remove those rows"
        )

    if id_column is None:
        ids = [str(row + 1) for row in range(len(frame))]
    else:
        ids = [cell_text(value) for value in frame[id_column]]
        ids = [None if value is None else value.strip() for value in ids]
        empty_ids = [row for row, value in enumerate(ids) if not value]
        if empty_ids:
            raise ValidationError(
                f"{source}: {len(empty_ids)} empty id(s) in column {id_column!r} at {_rows(empty_ids)}; every row needs an id"
            )
        seen: dict[str, list[int]] = {}
        for row, value in enumerate(ids):
            seen.setdefault(value, []).append(row)
        duplicates = {value: rows for value, rows in seen.items() if len(rows) > 1}
        if duplicates:
            shown = "; ".join(f"{value!r} at {_rows(rows)}" for value, rows in list(duplicates.items())[:SHOWN_ROWS])
            raise ValidationError(
                f"{source}: {len(duplicates)} duplicate id(s) in column {id_column!r}: {shown}; ids must be unique"
            )

    classes: list[int | None] = [None] * len(frame)
    if label_column is not None:
        class_of = {name: index for index, name in enumerate(labels)}
        values = [cell_text(value) for value in frame[label_column]]
        values = [None if value is None or not value.strip() else value.strip() for value in values]
        unknown: dict[str, list[int]] = {}
        for row, value in enumerate(values):
            if value is None:
                continue
            if value in class_of:
                classes[row] = class_of[value]
            else:
                unknown.setdefault(value, []).append(row)
        if unknown:
            shown = "; ".join(f"{value!r} at {_rows(rows)}" for value, rows in list(unknown.items())[:SHOWN_ROWS])
            raise ValidationError(
                f"{source}: column {label_column!r} has label(s) outside the declared set "
                f"[{', '.join(labels)}]: {shown}; add them to --labels or fix the file"
            )
        missing = [row for row, value in enumerate(classes) if value is None]
        if labels_required and missing:
            raise ValidationError(
                f"{source}: {len(missing)} row(s) without a label in column {label_column!r} at {_rows(missing)}; "
                "every row of a held-out file needs a label"
            )
    elif labels_required:
        raise ValidationError(f"{source}: a label column is required")
    return Table(ids=tuple(ids), texts=tuple(texts), classes=tuple(classes))
