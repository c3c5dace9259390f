"""What the public API accepts as a pool or as new inputs, read into texts or features.

Accepted: a 2-D numeric NumPy array (features), a list or 1-D array of strings (texts),
a pandas DataFrame or a Hugging Face ``datasets.Dataset`` with the column(s) named
(``text_column=`` or ``feature_columns=``), and a pandas Series of strings. ``datasets`` is
not a dependency: a Dataset is recognised by its ``column_names`` (duck typing).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anchoral.errors import ValidationError
from anchoral.validation import check_features


@dataclass(frozen=True)
class Inputs:
    """A pool (or new inputs) read: exactly one of ``texts`` and ``features``; ``ids`` if a column named them."""

    texts: list[str] | None = None
    features: np.ndarray | None = None
    ids: list[str] | None = None

    def __len__(self) -> int:
        return len(self.texts) if self.texts is not None else int(self.features.shape[0])

    @property
    def kind(self) -> str:
        return "texts" if self.texts is not None else "features"


def _is_dataframe(value) -> bool:
    return type(value).__module__.startswith("pandas") and hasattr(value, "columns") and hasattr(value, "iloc")


def _is_series(value) -> bool:
    return type(value).__module__.startswith("pandas") and hasattr(value, "dtype") and hasattr(value, "iloc") \
        and not hasattr(value, "columns")


def _is_hf_dataset(value) -> bool:
    return hasattr(value, "column_names") and hasattr(value, "features") and not _is_dataframe(value)


def _columns_of(table) -> list[str]:
    return [str(name) for name in (table.columns if _is_dataframe(table) else table.column_names)]


def _column(table, name: str, what: str, argument: str) -> list:
    columns = _columns_of(table)
    if name not in columns:
        raise ValidationError(f"{argument}={name!r} is not a column of the {what}; its columns: {', '.join(columns)}")
    return list(table[name].tolist() if _is_dataframe(table) else table[name])


def _texts(values, name: str) -> list[str]:
    texts = list(values)
    for row, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValidationError(f"{name} must hold only strings; row {row} is {type(text).__name__} {text!r}")
        if not text.strip():
            raise ValidationError(f"{name} has an empty text at row {row}")
    if not texts:
        raise ValidationError(f"{name} is empty; expected at least one example")
    return texts


def _ids(values, n_rows: int, name: str) -> list[str]:
    ids = [str(value) for value in values]
    if len(ids) != n_rows:
        raise ValidationError(f"{name} has {len(ids)} entries; expected {n_rows} (one per example)")
    if any(not value.strip() for value in ids):
        raise ValidationError(f"{name} has an empty id")
    if len(set(ids)) != len(ids):
        duplicate = next(value for value in ids if ids.count(value) > 1)
        raise ValidationError(f"{name} must be unique; {duplicate!r} appears more than once")
    return ids


def read_inputs(data, *, text_column: str | None = None, feature_columns=None, id_column: str | None = None,
                ids=None, name: str = "pool") -> Inputs:
    """``data`` as texts or features (see the module docstring); every problem a ValidationError naming ``name``."""
    if data is None:
        raise ValidationError(f"{name} is required: a feature matrix, a list of texts, a DataFrame or a Dataset")
    if isinstance(data, (str, bytes)):
        raise ValidationError(f"{name} must be a sequence of examples; got a single {type(data).__name__} (wrap it in a list)")
    if _is_dataframe(data) or _is_hf_dataset(data):
        what = "DataFrame" if _is_dataframe(data) else "Dataset"
        if (text_column is None) == (feature_columns is None):
            raise ValidationError(
                f"a {what} {name} needs exactly one of text_column= or feature_columns=; "
                f"its columns: {', '.join(_columns_of(data))}"
            )
        if id_column is not None:
            if ids is not None:
                raise ValidationError("pass ids= or id_column=, not both")
            ids = _column(data, id_column, what, "id_column")
        if text_column is not None:
            texts = _texts(_column(data, text_column, what, "text_column"), f"{name} column {text_column!r}")
            return Inputs(texts=texts, ids=None if ids is None else _ids(ids, len(texts), "ids"))
        if isinstance(feature_columns, str):
            feature_columns = [feature_columns]
        columns = [_column(data, column, what, "feature_columns") for column in feature_columns]
        if not columns:
            raise ValidationError("feature_columns is empty; name the numeric columns of the features")
        rows = [np.atleast_1d(np.asarray(value, dtype=np.float32)) for value in columns[0]] if len(columns) == 1 else None
        if rows is not None and rows and rows[0].ndim == 1 and rows[0].size > 1:
            matrix = np.stack(rows)  # one column holding a vector per row (e.g. a Dataset's embedding column)
        else:
            matrix = np.column_stack([np.asarray(column, dtype=object) for column in columns])
        features = check_features(_numeric(matrix, name), name)
        return Inputs(features=features, ids=None if ids is None else _ids(ids, features.shape[0], "ids"))
    if text_column is not None or feature_columns is not None or id_column is not None:
        raise ValidationError(
            f"text_column, feature_columns and id_column name columns of a DataFrame or Dataset; {name} is a "
            f"{type(data).__name__}"
        )
    if _is_series(data):
        data = data.tolist()
    if isinstance(data, np.ndarray) and data.dtype.kind in "OUS" and data.ndim == 1:
        data = data.tolist()
    if isinstance(data, (list, tuple)) and data and all(isinstance(item, str) for item in data):
        texts = _texts(data, name)
        return Inputs(texts=texts, ids=None if ids is None else _ids(ids, len(texts), "ids"))
    if isinstance(data, (list, tuple)) and any(isinstance(item, str) for item in data):
        row = next(i for i, item in enumerate(data) if not isinstance(item, str))
        raise ValidationError(f"{name} mixes texts and other values; row {row} is {type(data[row]).__name__} {data[row]!r}")
    features = check_features(_numeric(data, name), name)
    return Inputs(features=features, ids=None if ids is None else _ids(ids, features.shape[0], "ids"))


def _numeric(data, name: str) -> np.ndarray:
    try:
        return np.asarray(data, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            f"{name} must be a 2-D numeric array (features) or a list of strings (texts); could not read it: {exc}"
        ) from exc
