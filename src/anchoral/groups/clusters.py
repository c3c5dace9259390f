"""Class x cluster of the pretrained features (k-means).

A shortcut is an attribute the pretrained features encode strongly (VADER's domain:
one k-means cluster of the MiniLM pool holds 96% of one domain), so the clusters of the
*pool* stand in for the attribute, and within a class the smaller clusters of the
labeled set for the minority. Clustering needs no labels, so the whole pool is used
when it is given (a deployment has it); otherwise the labeled features alone.
"""

from __future__ import annotations

import warnings

import numpy as np

from anchoral.errors import ValidationError
from anchoral.groups.base import InferredGroups, check_inputs, smaller_cells_are_minority
from anchoral.validation import check_features

NAME = "clusters"


def unit_rows(features: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return np.asarray(features, dtype=np.float64) / np.where(norms > 0, norms, 1.0)


MAX_FIT_ROWS = 20_000


def fit_clusters(features: np.ndarray, n_clusters: int, seed: int = 0) -> KMeans:
    """k-means on L2-normalised rows (deterministic for a seed). Above ``MAX_FIT_ROWS`` rows the
    centres are fitted on a seeded uniform sample of that many rows (a 100k pool: about 1 s
    instead of 3 s); every row is still assigned by ``assignment_margin``."""
    if isinstance(n_clusters, bool) or not isinstance(n_clusters, (int, np.integer)) or n_clusters < 1:
        raise ValidationError(f"n_clusters must be a positive integer; got {n_clusters!r}")
    if n_clusters > features.shape[0]:
        raise ValidationError(
            f"n_clusters={n_clusters} is larger than the {features.shape[0]} examples to cluster"
        )
    # scikit-learn is imported on first use: about 2 s, and a labeling project's round
    # (`anchoral query`, the web app) imports every strategy and the robust heads.
    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if features.shape[0] > MAX_FIT_ROWS:
            features = features[np.sort(np.random.default_rng(seed).choice(features.shape[0], MAX_FIT_ROWS,
                                                                           replace=False))]
        return KMeans(n_clusters=int(n_clusters), n_init=3, random_state=seed).fit(unit_rows(features))


def assignment_margin(kmeans: KMeans, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centre and the margin (d2 - d1) / (d2 + d1) in [0, 1] to the second nearest."""
    distances = kmeans.transform(unit_rows(features))
    nearest = distances.argmin(axis=1)
    if distances.shape[1] == 1:
        return nearest, np.ones(nearest.size)
    two = np.partition(distances, 1, axis=1)[:, :2]
    total = two.sum(axis=1)
    return nearest, np.divide(two[:, 1] - two[:, 0], total, out=np.zeros(nearest.size), where=total > 0)


def label_by_cluster(features, labels, *, pool_features=None, n_clusters: int = 2, min_margin: float = 0.05,
                     seed: int = 0) -> InferredGroups:
    """Cell = (label, k-means cluster of the pretrained features); minority = the smaller cells
    of a class. Assignments with a margin below ``min_margin`` are marked uncertain."""
    features, labels = check_inputs(features, labels)
    reference = features if pool_features is None else check_features(pool_features, "pool_features")
    if reference.shape[1] != features.shape[1]:
        raise ValidationError(
            f"pool_features must have the labeled features' {features.shape[1]} columns; got {reference.shape[1]}"
        )
    if not 0 <= min_margin < 1:
        raise ValidationError(f"min_margin must be in [0, 1); got {min_margin!r}")
    kmeans = fit_clusters(reference, n_clusters, seed)
    cluster, margin = assignment_margin(kmeans, features)
    cells = labels.astype(np.int64) * int(n_clusters) + cluster
    return InferredGroups(
        cells=cells,
        minority=smaller_cells_are_minority(labels, cells),
        confidence=margin,
        uncertain=margin < min_margin,
        method=NAME,
        diagnostics={"n_clusters": int(n_clusters), "clustered": "pool" if pool_features is not None else "labeled",
                     "cell_sizes": {str(c): int(n) for c, n in zip(*np.unique(cells, return_counts=True))},
                     "n_uncertain": int((margin < min_margin).sum())},
    )
