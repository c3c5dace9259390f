"""A fast, deterministic, non-pretrained text encoder: hashed word n-gram counts.

Not a substitute for MiniLM in a study: it knows nothing beyond the words it sees,
so it is the "no pretraining at all" end of the scale. It exists so that grid-runner
tests and smoke runs finish in seconds without loading a transformer.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from anchoral.errors import ValidationError
from anchoral.validation import check_positive_int


class HashingEncoder:
    """Word 1- and 2-gram counts hashed into ``dimension`` signed buckets, L2-normalised.

    Parameters
    ----------
    dimension : int, default 256
        Number of hash buckets (the feature dimension).
    """

    def __init__(self, dimension: int = 256):
        self.dimension = check_positive_int(dimension, "dimension")
        self.fingerprint = f"hashing-12gram-{self.dimension}"

    def encode(self, inputs: Sequence[str], batch_size: int = 64, progress: bool = True) -> np.ndarray:
        """Embed strings as float32 rows (``batch_size`` and ``progress`` are accepted and unused)."""
        from sklearn.feature_extraction.text import HashingVectorizer

        texts = list(inputs)
        if not all(isinstance(text, str) for text in texts):
            bad = next(type(text).__name__ for text in texts if not isinstance(text, str))
            raise ValidationError(f"inputs must be strings for the hashing text encoder; found a {bad}")
        if not texts:
            return np.empty((0, self.dimension), dtype=np.float32)
        vectorizer = HashingVectorizer(n_features=self.dimension, ngram_range=(1, 2), norm="l2", alternate_sign=True)
        return vectorizer.transform(texts).toarray().astype(np.float32)
