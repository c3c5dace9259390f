"""Core-set selection by greedy k-center (Sener & Savarese 2018, §4.2, Algorithm 1).

Repeatedly add the unlabeled example farthest from its nearest labeled-or-already-
selected example, in the model's representation space (``RoundState.pool_embeddings``,
Euclidean). The greedy rule is a 2-approximation of the k-center problem.

Cost: one blocked 1-NN search from the pool to L (``anchoral.index.knn``), then the greedy
picks, evaluated lazily (``LazyFarthestPoint``): a point's distance to its nearest centre
only shrinks as centres are added, so a stale value is an upper bound, and a pick needs
exact distances only for the points whose bounds could still beat the best exact one. In
high dimension a new centre is far from almost every point, so a batch of b picks touches
a few hundred points instead of b passes over the whole pool; in the worst case (every
bound beaten) it degrades to the eager cost of one distance row per pick. The picks are
the eager algorithm's, ties included.
"""

from __future__ import annotations

import numpy as np

from anchoral.execution import knn
from anchoral.strategies.base import RoundState, Selection, Strategy

INITIAL_FRONTIER = 256


def _random_argmax(values: np.ndarray, rng: np.random.Generator) -> int:
    """Position of the largest value; ties broken by ``rng``, never by index order."""
    best = np.flatnonzero(values == values.max())
    return int(best[0]) if best.size == 1 else int(rng.choice(best))


class LazyFarthestPoint:
    """Squared distances of points to their nearest centre, exact wherever a pick needs them.

    ``bounds`` holds, for every point, its squared distance to the nearest centre among
    those it has been compared with: an upper bound of the true value, exact for the
    *frontier*, the points with the largest bounds when the search started (``order``),
    which are compared with every new centre. Everything outside the frontier keeps its
    starting bound, at most ``start_bounds[frontier]`` by the sort, so once the frontier's
    best exact value beats that, it is the global maximum; otherwise the frontier doubles.
    """

    def __init__(self, vectors: np.ndarray, rows: np.ndarray, bounds: np.ndarray,
                 initial_frontier: int = INITIAL_FRONTIER):
        self.vectors = vectors  # the whole (possibly memory-mapped) matrix; read at ``rows`` only
        self.rows = rows
        self.bounds = bounds
        # Filled as points join the frontier; every centre is a frontier point.
        self.squared_norms = np.full(bounds.size, np.nan)
        self.order = np.argsort(-bounds, kind="stable")
        self.start_bounds = bounds[self.order]
        self.centres: list[int] = []
        self.frontier = 0
        self.frontier_vectors = np.empty((0, vectors.shape[1]), dtype=np.float32)
        self._grow(min(bounds.size, initial_frontier))

    def _distances(self, points: np.ndarray, point_vectors: np.ndarray, centres: list[int]) -> np.ndarray:
        """(len(points), len(centres)) squared distances, clipped at 0."""
        centre_vectors = np.asarray(self.vectors[self.rows[centres]], dtype=np.float32)
        products = (point_vectors @ centre_vectors.T).astype(np.float64)
        distances = self.squared_norms[points][:, None] + self.squared_norms[centres][None, :] - 2.0 * products
        return np.maximum(distances, 0.0, out=distances)

    def _grow(self, frontier: int) -> None:
        """Bring the points ranked ``self.frontier:frontier`` up to date with every centre so far."""
        added = self.order[self.frontier : frontier]
        added_vectors = np.asarray(self.vectors[self.rows[added]], dtype=np.float32)
        self.squared_norms[added] = np.einsum("ij,ij->i", added_vectors, added_vectors, dtype=np.float64)
        if self.centres:
            self.bounds[added] = np.minimum(self.bounds[added],
                                            self._distances(added, added_vectors, self.centres).min(axis=1))
        self.frontier_vectors = np.concatenate([self.frontier_vectors, added_vectors])
        self.frontier = frontier

    def farthest(self) -> np.ndarray:
        """Every point whose exact squared distance to its nearest centre is the largest (ascending)."""
        while True:
            frontier_points = self.order[: self.frontier]
            values = self.bounds[frontier_points]
            best = values.max()
            if self.frontier == self.bounds.size or best > self.start_bounds[self.frontier]:
                if best == -np.inf:
                    raise ValueError("every point is already a centre; there is no farthest point left")
                return np.sort(frontier_points[values == best])
            self._grow(min(self.bounds.size, 2 * self.frontier))

    def add_centre(self, point: int) -> None:
        """Make ``point`` a centre: it leaves the race (-inf), the frontier is compared with it."""
        self.centres.append(point)
        frontier_points = self.order[: self.frontier]
        self.bounds[frontier_points] = np.minimum(
            self.bounds[frontier_points], self._distances(frontier_points, self.frontier_vectors, [point])[:, 0])
        self.bounds[point] = -np.inf


class CoreSet(Strategy):
    """Greedy k-center core-set (Sener & Savarese, ICLR 2018), an extra baseline.

    Each pick is the unlabeled example whose distance to its nearest labeled or
    already-picked example is largest (ties broken by ``rng``). With an empty labeled
    set the first pick is uniform at random among the unlabeled.

    ``Selection.scores`` holds each pick's distance to its nearest labeled-or-selected
    example at the time it was picked (non-increasing; ``inf`` for a first pick with no
    labeled set). Diagnostics: ``covering_radius_before`` / ``covering_radius_after``,
    the largest such distance over U before and after the batch (``None`` if undefined),
    and ``points_evaluated``, how many unlabeled points needed exact distances to the picks.
    """

    name = "coreset"

    def _select(self, state: RoundState, n: int, rng: np.random.Generator) -> Selection:
        unlabeled = state.unlabeled_indices
        embeddings = state.pool_embeddings
        chosen = np.empty(n, dtype=np.int64)
        scores = np.empty(n, dtype=np.float64)
        if state.labeled_indices.size:
            centres, first = state.labeled_indices, 0
        else:  # no labeled set: every distance is infinite, the first pick is uniform at random
            chosen[0], scores[0], first = _random_argmax(np.full(unlabeled.size, np.inf), rng), np.inf, 1
            centres = unlabeled[chosen[:1]]
        # The whole pool as queries, read in place (the rows of ``centres`` are dropped).
        nearest, _ = knn(embeddings, embeddings[centres], 1, executor=state.executor)
        bounds = nearest[unlabeled, 0].astype(np.float64)
        bounds[chosen[:first]] = -np.inf
        radius_before = float(np.sqrt(bounds.max())) if first == 0 else np.inf
        search = LazyFarthestPoint(embeddings, unlabeled, bounds)
        for step in range(first, n):
            tied = search.farthest()
            best = int(tied[0]) if tied.size == 1 else int(rng.choice(tied))
            chosen[step] = best
            scores[step] = np.sqrt(bounds[best])
            search.add_centre(best)
        radius_after = float(np.sqrt(bounds[search.farthest()[0]])) if n < unlabeled.size else 0.0
        return Selection(
            indices=unlabeled[chosen],
            scores=scores,
            diagnostics={
                "covering_radius_before": radius_before if np.isfinite(radius_before) else None,
                "covering_radius_after": radius_after,
                "points_evaluated": int(search.frontier),
            },
        )

