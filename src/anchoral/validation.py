"""Input checks shared by every public entry point (scikit-learn style: validate
up front, fail with a message that says what was expected and what was given)."""

from __future__ import annotations

import numpy as np

from anchoral.errors import ValidationError


def check_features(features, name: str = "features", *, allow_1d: bool = False) -> np.ndarray:
    """Return ``features`` as a finite float32 2-D array, or raise naming ``name``."""
    try:
        array = np.asarray(features, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{name} must be numeric; could not convert: {exc}") from exc
    if array.ndim != 2 and not (allow_1d and array.ndim == 1):
        raise ValidationError(
            f"{name} must be a 2-D array of shape (n_examples, n_features); got shape {array.shape}"
        )
    if array.shape[0] == 0:
        raise ValidationError(f"{name} is empty; expected at least one example")
    bad = _count_non_finite_rows(array)
    if bad:
        raise ValidationError(f"{name} contains NaN or infinite values in {bad} row(s); expected finite numbers")
    return array


FINITE_CHECK_ROWS = 65536


def _count_non_finite_rows(array: np.ndarray) -> int:
    """Rows holding a NaN or an infinity, checked in blocks so a large (memory-mapped) pool
    needs no pool-sized temporary.

    A block whose sum is finite holds no NaN or infinity (either would make the sum
    non-finite), so the one reduction clears it; only a block whose sum is not finite
    (a bad value, or finite values so large that the sum overflows) is counted row by row."""
    bad = 0
    for start in range(0, array.shape[0], FINITE_CHECK_ROWS):
        block = array[start : start + FINITE_CHECK_ROWS]
        with np.errstate(over="ignore", invalid="ignore"):
            if np.isfinite(block.sum()):
                continue
        finite = np.isfinite(block)
        if array.ndim > 1:
            finite = finite.all(axis=tuple(range(1, array.ndim)))
        bad += int(finite.size - np.count_nonzero(finite))
    return bad


def check_labels(labels, n_rows: int | None = None, name: str = "labels") -> np.ndarray:
    """Return ``labels`` as a 1-D int64 array of non-negative class ids."""
    array = np.asarray(labels)
    if array.ndim != 1:
        raise ValidationError(f"{name} must be 1-D; got shape {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        if np.issubdtype(array.dtype, np.floating) and np.all(np.isfinite(array)) and np.all(array == np.round(array)):
            array = array.astype(np.int64)
        else:
            raise ValidationError(f"{name} must be integer class ids; got dtype {array.dtype}")
    array = array.astype(np.int64, copy=False)
    if array.size and array.min() < 0:
        raise ValidationError(f"{name} must be non-negative class ids; got minimum {array.min()}")
    if n_rows is not None and array.shape[0] != n_rows:
        raise ValidationError(f"{name} has {array.shape[0]} entries; expected {n_rows} (one per row of the features)")
    return array


def check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValidationError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


def check_fraction(value, name: str, *, inclusive_zero: bool = False) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{name} must be a number in (0, 1]; got {value!r}") from exc
    low_ok = value >= 0 if inclusive_zero else value > 0
    if not (low_ok and value <= 1):
        bound = "[0, 1]" if inclusive_zero else "(0, 1]"
        raise ValidationError(f"{name} must be in {bound}; got {value}")
    return value


def parse_key_values(pairs, option: str = "--param") -> dict:
    """``["k=v", ...]`` from the command line as a dict; values read as int, then float,
    then true/false, else kept as text. A malformed pair is a ValidationError naming ``option``."""
    parsed: dict = {}
    for pair in pairs or []:
        key, separator, raw = pair.partition("=")
        if not separator or not key.strip():
            raise ValidationError(f"{option} expects KEY=VALUE; got {pair!r}")
        text = raw.strip()
        value: int | float | bool | str = text
        if text.lower() in ("true", "false"):
            value = text.lower() == "true"
        else:
            for cast in (int, float):
                try:
                    value = cast(text)
                    break
                except ValueError:
                    continue
        parsed[key.strip()] = value
    return parsed
