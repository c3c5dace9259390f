"""The encoder interface: inputs -> float32 features, with a stable fingerprint."""

from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

import numpy as np


@runtime_checkable
class Encoder(Protocol):
    """Maps raw inputs to a float32 feature matrix.

    ``fingerprint`` changes whenever the mapping could change (weights, pooling,
    normalisation, truncation), so it is safe to use as an embedding-cache key.
    """

    fingerprint: str
    dimension: int

    def encode(self, inputs: Sequence, batch_size: int = 64, progress: bool = True) -> np.ndarray:
        ...


def check_texts(inputs, encoder: str) -> list[str]:
    """``inputs`` as a list of strings, or a ValidationError naming ``encoder``. A single
    string is refused (iterating it would encode its characters one by one)."""
    from anchoral.errors import ValidationError

    if isinstance(inputs, (str, bytes)):
        raise ValidationError(f"inputs must be a sequence of strings; got a single {type(inputs).__name__} "
                              "(wrap it in a list)")
    texts = list(inputs)
    bad = next((type(text).__name__ for text in texts if not isinstance(text, str)), None)
    if bad is not None:
        raise ValidationError(f"inputs must be strings for the {encoder} text encoder; found a {bad}")
    return texts
