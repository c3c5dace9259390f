"""Uncertainty sampling (Tamkin et al. 2022 §2; ALVIN's "Uncertainty" baseline).

The scores are pure functions of predicted probabilities (higher = more uncertain).
For two classes the three give the same ranking.
"""

from __future__ import annotations

import numpy as np
from scipy.special import xlogy

from anchoral.strategies.base import RoundState, Selection, Strategy
from anchoral.strategies.ranking import top_k_random_ties


def least_confidence(probabilities: np.ndarray) -> np.ndarray:
    """1 - max_c p_c (Tamkin et al.'s default acquisition function)."""
    return 1.0 - probabilities.max(axis=1)


def entropy(probabilities: np.ndarray) -> np.ndarray:
    """Predictive entropy -sum_c p_c log p_c, with 0 log 0 = 0."""
    p = np.asarray(probabilities, dtype=np.float64)
    return -xlogy(p, p).sum(axis=1)  # xlogy(0, 0) = 0, in one pass


def margin(probabilities: np.ndarray) -> np.ndarray:
    """-(p_(1) - p_(2)): the smaller the gap between the two most likely classes, the higher."""
    probabilities = np.asarray(probabilities)
    if probabilities.shape[1] == 2:  # the common binary case without a partition
        return -np.abs(probabilities[:, 1] - probabilities[:, 0])
    top_two = np.partition(probabilities, probabilities.shape[1] - 2, axis=1)[:, -2:]
    return -(top_two[:, 1] - top_two[:, 0])


class _UncertaintySampling(Strategy):
    """Top-n unlabeled examples by an uncertainty score of the model's predictions."""

    @staticmethod
    def score(probabilities: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _select(self, state: RoundState, n: int, rng: np.random.Generator) -> Selection:
        candidates = state.unlabeled_indices
        scores = self.score(state.pool_probabilities[candidates])
        best = top_k_random_ties(scores, n, rng)
        return Selection(indices=candidates[best], scores=scores[best])


class LeastConfidence(_UncertaintySampling):
    name = "least-confidence"
    score = staticmethod(least_confidence)


class EntropySampling(_UncertaintySampling):
    name = "entropy"
    score = staticmethod(entropy)


class MarginSampling(_UncertaintySampling):
    name = "margin"
    score = staticmethod(margin)
