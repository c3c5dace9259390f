"""Top-k selection with ties broken by a seeded RNG, never by index order (REFERENCE.md)."""

from __future__ import annotations

import numpy as np


def top_k_random_ties(scores: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Positions of the ``k`` largest ``scores``, best first; equal scores ordered at random.

    Linear time: ``argpartition`` finds the k-th largest value; everything strictly
    above it is taken, and the remaining slots are filled by a uniform random draw
    among the entries equal to it.
    """
    scores = np.asarray(scores)
    n = scores.shape[0]
    if not 0 < k <= n:
        raise ValueError(f"k must be in [1, {n}]; got {k}")
    threshold = scores[np.argpartition(scores, n - k)[n - k]]
    above = np.flatnonzero(scores > threshold)
    tied = np.flatnonzero(scores == threshold)
    chosen_tied = rng.choice(tied, size=k - above.size, replace=False)
    # Order best first; a random key breaks ties inside "above" too.
    chosen = np.concatenate([above, chosen_tied])
    tie_break = rng.random(chosen.size)
    order = np.lexsort((tie_break, -scores[chosen]))
    return chosen[order]
