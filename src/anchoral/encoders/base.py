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
