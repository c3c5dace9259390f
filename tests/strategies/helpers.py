"""Building RoundStates for strategy tests without training a model."""

from __future__ import annotations

import numpy as np

from anchoral.strategies.base import RoundState


class FixedProbabilityModel:
    """A stand-in for a fitted model whose predictions are given (strategies are pure
    functions of predictions, so their unit tests pin the predictions directly)."""

    def __init__(self, probabilities: np.ndarray):
        self.probabilities = np.asarray(probabilities, dtype=np.float64)
        self.n_classes = self.probabilities.shape[1]

    def predict_proba(self, features):
        assert len(features) == len(self.probabilities)
        return self.probabilities

    def embed(self, features):
        return np.asarray(features)

    def proba_from_embedding(self, embeddings):
        raise NotImplementedError


def state_with_probabilities(probabilities, labeled_indices=(), labeled_labels=None, n_features: int = 3) -> RoundState:
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labeled = np.asarray(labeled_indices, dtype=np.int64)
    labels = np.zeros(labeled.size, dtype=np.int64) if labeled_labels is None else np.asarray(labeled_labels)
    return RoundState(
        features=np.zeros((probabilities.shape[0], n_features), dtype=np.float32),
        labeled_indices=labeled,
        labeled_labels=labels,
        model=FixedProbabilityModel(probabilities),
        fit_report=None,
        n_classes=probabilities.shape[1],
    )
