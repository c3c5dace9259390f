"""Random sampling: the baseline every paper compares against."""

from __future__ import annotations

import numpy as np

from anchoral.strategies.base import RoundState, Selection, Strategy


class RandomSampling(Strategy):
    """Uniform sample without replacement from the unlabeled pool."""

    name = "random"

    def _select(self, state: RoundState, n: int, rng: np.random.Generator) -> Selection:
        return Selection(indices=rng.choice(state.unlabeled_indices, size=n, replace=False))
