"""Building RoundStates for strategy tests without training a model."""

from __future__ import annotations

import numpy as np

from anchoral.models.base import STOP_EPOCH_CAP, FitReport
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
        """A fixed softmax-linear f_cls, so strategies that mix representations (ALFA-Mix) can run."""
        weights = np.random.default_rng(0).normal(size=(np.shape(embeddings)[1], self.n_classes))
        logits = np.asarray(embeddings, dtype=np.float64) @ weights
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)


def two_epoch_report(n_labeled: int) -> FitReport:
    """A FitReport whose dynamics make every third labeled example forgotten (correct, then wrong)."""
    second_epoch = np.arange(n_labeled) % 3 != 0
    correctness = np.stack([np.ones(n_labeled, dtype=bool), second_epoch])
    return FitReport(epoch_losses=(0.7, 0.5), first_loss=0.7, final_loss=0.5, correctness=correctness,
                     stop_reason=STOP_EPOCH_CAP, epochs=2, steps=2, seconds=0.0)


def state_with_probabilities(probabilities, labeled_indices=(), labeled_labels=None, n_features: int = 3,
                             features=None) -> RoundState:
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labeled = np.asarray(labeled_indices, dtype=np.int64)
    labels = np.zeros(labeled.size, dtype=np.int64) if labeled_labels is None else np.asarray(labeled_labels)
    if features is None:
        features = np.zeros((probabilities.shape[0], n_features), dtype=np.float32)
    return RoundState(
        features=np.asarray(features, dtype=np.float32),
        labeled_indices=labeled,
        labeled_labels=labels,
        model=FixedProbabilityModel(probabilities),
        fit_report=two_epoch_report(labeled.size),
        n_classes=probabilities.shape[1],
    )


def state_on_features(features, labeled_indices=(), model_class=FixedProbabilityModel) -> RoundState:
    """A RoundState over ``features`` whose model embeds by the identity and predicts 50/50;
    labeled examples are all class 0 and there is no FitReport."""
    features = np.asarray(features, dtype=np.float32).reshape(len(features), -1)
    labeled = np.asarray(labeled_indices, dtype=np.int64)
    return RoundState(
        features=features,
        labeled_indices=labeled,
        labeled_labels=np.zeros(labeled.size, dtype=np.int64),
        model=model_class(np.full((len(features), 2), 0.5)),
        fit_report=None,
        n_classes=2,
    )
