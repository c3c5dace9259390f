"""Uncertainty sampling (Tamkin et al. 2022 §2; ALVIN's "Uncertainty" baseline).

The scores are pure functions of predicted probabilities (higher = more uncertain).
For two classes the three give the same ranking.
"""

from __future__ import annotations

import numpy as np

from anchoral.strategies.base import RoundState, Selection, Strategy
from anchoral.strategies.ranking import top_k_random_ties


# Up to this many classes, a loop over the columns (one vectorised operation per class)
# beats NumPy's reduction along a short row axis: 5x for the max of two columns, 2x for
# the sum of two entropy terms (100k rows; benchmarks/peers.py, "probabilities given").
COLUMN_LOOP_MAX_CLASSES = 32


def least_confidence(probabilities: np.ndarray) -> np.ndarray:
    """1 - max_c p_c (Tamkin et al.'s default acquisition function)."""
    probabilities = np.asarray(probabilities)
    if probabilities.shape[1] > COLUMN_LOOP_MAX_CLASSES:
        return 1.0 - probabilities.max(axis=1)
    top = probabilities[:, 0].copy()
    for column in range(1, probabilities.shape[1]):
        np.maximum(top, probabilities[:, column], out=top)
    return np.subtract(1.0, top, out=top)


def xlogx(p: np.ndarray) -> np.ndarray:
    """p log p elementwise, with 0 log 0 = 0 (scipy's ``xlogy(p, p)`` without importing scipy:
    a labeling project's round imports this module, and scipy.special costs 0.2 s)."""
    positive = p > 0
    out = np.zeros(p.shape, dtype=np.result_type(p, np.float64))
    np.log(p, out=out, where=positive)
    return np.multiply(out, p, out=out)


def entropy(probabilities: np.ndarray) -> np.ndarray:
    """Predictive entropy -sum_c p_c log p_c, with 0 log 0 = 0."""
    p = np.asarray(probabilities, dtype=np.float64)
    if p.shape[1] > COLUMN_LOOP_MAX_CLASSES:
        return -xlogx(p).sum(axis=1)
    total = xlogx(p[:, 0])
    for column in range(1, p.shape[1]):
        total += xlogx(p[:, column])
    return np.negative(total, out=total)


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
        # Score the whole pool, then take the candidates' scores: a 1-D gather instead of a
        # copy of the candidates' probability rows (|L| is small next to the pool).
        scores = self.score(state.pool_probabilities)[candidates]
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
