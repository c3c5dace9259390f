"""Synthetic labeled sets with a planted minority: a strong, clean spurious attribute and a
weaker, noisy core feature, so a plain head learns the attribute and misclassifies the
examples whose attribute disagrees with their label."""

from __future__ import annotations

import numpy as np


def planted_minority(n: int = 400, minority_share: float = 0.1, dims: int = 16, seed: int = 0):
    """(features, labels, truly_minority, pool_features): the attribute agrees with the label
    except on ``minority_share`` of the examples; pool_features are 4x more unlabeled rows
    from the same distribution."""
    rng = np.random.default_rng(seed)

    def draw(size):
        labels = rng.integers(0, 2, size=size)
        minority = rng.random(size) < minority_share
        attribute = np.where(minority, 1 - labels, labels)
        features = rng.normal(scale=0.3, size=(size, dims))
        features[:, 0] += 4.0 * (2 * attribute - 1)  # the shortcut: large and clean
        features[:, 1] += 0.8 * (2 * labels - 1) + rng.normal(scale=1.0, size=size)  # the task: weak, noisy
        return features.astype(np.float32), labels, minority

    features, labels, minority = draw(n)
    pool, _, _ = draw(4 * n)
    return features, labels, minority, pool
