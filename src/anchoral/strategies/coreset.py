"""Core-set selection by greedy k-center (Sener & Savarese 2018, §4.2, Algorithm 1).

Repeatedly add the unlabeled example farthest from its nearest labeled-or-already-
selected example, in the model's representation space (``RoundState.pool_embeddings``,
Euclidean). The greedy rule is a 2-approximation of the k-center problem.

Cost: one blocked 1-NN search from U to L (``anchoral.index.knn``, memory bounded by
its block size), then one distance row per selected example (O(|U| d) each), kept
as a running minimum, so memory stays O(|U|) beyond the embeddings themselves.
"""

from __future__ import annotations

import numpy as np

from anchoral.execution import knn
from anchoral.strategies.base import RoundState, Selection, Strategy


def squared_distances_to_row(vectors: np.ndarray, squared_norms: np.ndarray, row: int) -> np.ndarray:
    """Squared Euclidean distance of every row of ``vectors`` to ``vectors[row]``, clipped at 0."""
    distances = squared_norms + squared_norms[row] - 2.0 * (vectors @ vectors[row]).astype(np.float64)
    np.maximum(distances, 0.0, out=distances)
    distances[row] = 0.0
    return distances


def _random_argmax(values: np.ndarray, rng: np.random.Generator) -> int:
    """Position of the largest value; ties broken by ``rng``, never by index order."""
    best = np.flatnonzero(values == values.max())
    return int(best[0]) if best.size == 1 else int(rng.choice(best))


class CoreSet(Strategy):
    """Greedy k-center core-set (Sener & Savarese, ICLR 2018), an extra baseline.

    Each pick is the unlabeled example whose distance to its nearest labeled or
    already-picked example is largest (ties broken by ``rng``). With an empty labeled
    set the first pick is uniform at random among the unlabeled.

    ``Selection.scores`` holds each pick's distance to its nearest labeled-or-selected
    example at the time it was picked (non-increasing; ``inf`` for a first pick with no
    labeled set). Diagnostics: ``covering_radius_before`` / ``covering_radius_after``,
    the largest such distance over U before and after the batch (``None`` if undefined).
    """

    name = "coreset"

    def _select(self, state: RoundState, n: int, rng: np.random.Generator) -> Selection:
        unlabeled = state.unlabeled_indices
        embeddings = np.ascontiguousarray(state.pool_embeddings[unlabeled], dtype=np.float32)
        squared_norms = np.einsum("ij,ij->i", embeddings, embeddings, dtype=np.float64)
        if state.labeled_indices.size:
            labeled_embeddings = state.pool_embeddings[state.labeled_indices]
            nearest, _ = knn(embeddings, labeled_embeddings, 1, executor=state.executor)
            min_distances = nearest[:, 0].astype(np.float64)
        else:
            min_distances = np.full(unlabeled.size, np.inf)
        radius_before = float(np.sqrt(min_distances.max()))

        chosen = np.empty(n, dtype=np.int64)
        scores = np.empty(n, dtype=np.float64)
        for step in range(n):
            best = _random_argmax(min_distances, rng)
            chosen[step] = best
            scores[step] = np.sqrt(min_distances[best])
            np.minimum(min_distances, squared_distances_to_row(embeddings, squared_norms, best), out=min_distances)
            # A picked point is at distance 0 from itself; -inf (kept by the running minimum)
            # keeps it out of later ties at 0.
            min_distances[best] = -np.inf
        remaining = np.delete(min_distances, chosen)
        radius_after = float(np.sqrt(remaining.max())) if remaining.size else 0.0
        return Selection(
            indices=unlabeled[chosen],
            scores=scores,
            diagnostics={
                "covering_radius_before": radius_before if np.isfinite(radius_before) else None,
                "covering_radius_after": radius_after,
            },
        )
