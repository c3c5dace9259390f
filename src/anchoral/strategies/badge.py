"""BADGE, batch active learning by diverse gradient embeddings (Ash et al., ICLR 2020,
§3, Algorithm 1; reference: JordanAsh/badge).

The gradient embedding of x is the gradient of the cross-entropy at the model's own
prediction y_hat with respect to the last layer's weights:

    g(x)_c = h(x) * (1[c = y_hat] - p_c),   c = 1..C,   concatenated (length d*C),

h the penultimate representation (``RoundState.pool_embeddings``), p the predicted
probabilities. The batch is k-means++ *seeding only* (no Lloyd iterations) on these
vectors: the first centre is the point of largest norm; each next centre is drawn
with probability proportional to its squared distance to the nearest chosen centre.

g(x) = a(x) (x) h(x) with a(x)_c = 1[c = y_hat] - p_c, so it is never materialised:

    ||g(x) - g(y)||^2 = ||a(x)||^2 ||h(x)||^2 + ||a(y)||^2 ||h(y)||^2 - 2 (a(x).a(y)) (h(x).h(y)),

one O(N (d + C)) distance row per new centre, folded into a running minimum.
"""

from __future__ import annotations

import numpy as np

from anchoral.strategies.base import RoundState, Selection, Strategy

# Squared distances below this fraction of ||g(x)||^2 + ||g(c)||^2 are float32 rounding
# of a zero distance (the dot products run in float32): they get zero probability.
RELATIVE_ZERO_DISTANCE = 1e-5


def gradient_embedding_weights(probabilities: np.ndarray) -> np.ndarray:
    """a(x)_c = 1[c = argmax p] - p_c, shape (N, C): the class factor of the gradient embedding."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    weights = -probabilities
    weights[np.arange(probabilities.shape[0]), probabilities.argmax(axis=1)] += 1.0
    return weights


def gradient_embedding_seeding(
    weights: np.ndarray, embeddings: np.ndarray, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, int]:
    """k-means++ seeding on g = weights (x) embeddings (rows); ``(positions, n_uniform_draws)``.

    The first centre is the row of largest ||g|| (ties broken by ``rng``). Each next one
    is drawn with probability proportional to its squared distance to the nearest
    chosen centre; chosen rows and rows at distance zero get probability zero, so no
    centre repeats and the origin is never a centre. If every unchosen row is at
    distance zero, the draw is uniform among the unchosen (counted in ``n_uniform_draws``).
    """
    weights = np.asarray(weights, dtype=np.float64)
    embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
    squared_norms = np.einsum("ij,ij->i", weights, weights) * np.einsum(
        "ij,ij->i", embeddings, embeddings, dtype=np.float64
    )
    largest = np.flatnonzero(squared_norms == squared_norms.max())
    first = int(largest[0]) if largest.size == 1 else int(rng.choice(largest))

    chosen_mask = np.zeros(weights.shape[0], dtype=bool)
    positions = np.empty(n, dtype=np.int64)
    min_distances = np.full(weights.shape[0], np.inf)
    uniform_draws = 0
    centre = first
    for step in range(n):
        positions[step] = centre
        chosen_mask[centre] = True
        if step == n - 1:
            break
        cross = (weights @ weights[centre]) * (embeddings @ embeddings[centre]).astype(np.float64)
        distances = squared_norms + squared_norms[centre] - 2.0 * cross
        distances[distances <= RELATIVE_ZERO_DISTANCE * (squared_norms + squared_norms[centre])] = 0.0
        np.minimum(min_distances, distances, out=min_distances)
        min_distances[chosen_mask] = 0.0
        cumulative = np.cumsum(min_distances)
        if cumulative[-1] > 0:
            # First position whose cumulative weight exceeds u * total: its own weight is > 0.
            centre = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))
        else:
            centre = int(rng.choice(np.flatnonzero(~chosen_mask)))
            uniform_draws += 1
    return positions, uniform_draws


class Badge(Strategy):
    """BADGE (Ash et al., ICLR 2020): k-means++ seeding on gradient embeddings.

    No parameters. ``Selection.scores`` is ``None`` (picks are drawn, not ranked).
    Diagnostics: ``first_centre_norm`` (||g|| of the first pick), ``gradient_dim``
    (d*C), ``uniform_draws`` (picks drawn uniformly because every remaining unlabeled
    point coincided with a chosen centre).
    """

    name = "badge"

    def _select(self, state: RoundState, n: int, rng: np.random.Generator) -> Selection:
        unlabeled = state.unlabeled_indices
        weights = gradient_embedding_weights(state.pool_probabilities[unlabeled])
        embeddings = state.pool_embeddings[unlabeled]
        positions, uniform_draws = gradient_embedding_seeding(weights, embeddings, n, rng)
        first = positions[0]
        first_norm = np.linalg.norm(weights[first]) * np.linalg.norm(embeddings[first].astype(np.float64))
        return Selection(
            indices=unlabeled[positions],
            diagnostics={
                "first_centre_norm": float(first_norm),
                "gradient_dim": int(embeddings.shape[1] * weights.shape[1]),
                "uniform_draws": int(uniform_draws),
            },
        )
