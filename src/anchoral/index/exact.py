"""Exact k-nearest-neighbour search as blocked float32 GEMM + argpartition.

Squared Euclidean distances come from ||q||^2 - 2 q.x + ||x||^2, one block of
queries at a time, so memory stays at ``block_rows x n_database`` floats whatever
the number of queries. On one CPU this beats ``faiss.IndexFlatL2`` for the
few-thousand-query searches the strategies make (DESIGN.md, Real components).
"""

from __future__ import annotations

import numpy as np

from anchoral.errors import ValidationError
from anchoral.validation import check_features

DEFAULT_BLOCK_BYTES = 256 * 2**20


def _block_rows(n_database: int, block_bytes: int) -> int:
    return max(1, min(4096, block_bytes // max(1, 4 * n_database)))


def exact_knn(queries, database, k: int, *, block_bytes: int = DEFAULT_BLOCK_BYTES) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest rows of ``database`` for every row of ``queries``.

    Returns ``(squared_distances, indices)``, both of shape (n_queries, k), nearest
    first. Distances are clipped at 0 (the expansion can go slightly negative in float32).
    """
    queries = check_features(queries, "queries")
    database = check_features(database, "database")
    if queries.shape[1] != database.shape[1]:
        raise ValidationError(
            f"queries have {queries.shape[1]} columns but the database has {database.shape[1]}; they must match"
        )
    n_database = database.shape[0]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 < k <= n_database:
        raise ValidationError(f"k must be an integer in [1, {n_database}] (the database size); got {k!r}")
    database_norms = np.einsum("ij,ij->i", database, database)
    rows = _block_rows(n_database, block_bytes)
    distances = np.empty((queries.shape[0], k), dtype=np.float32)
    indices = np.empty((queries.shape[0], k), dtype=np.int64)
    for start in range(0, queries.shape[0], rows):
        block = queries[start : start + rows]
        squared = block @ database.T
        squared *= -2
        squared += database_norms
        squared += np.einsum("ij,ij->i", block, block)[:, None]
        if k < n_database:
            nearest = np.argpartition(squared, k - 1, axis=1)[:, :k]
        else:
            nearest = np.broadcast_to(np.arange(n_database), squared.shape).copy()
        nearest_distances = np.take_along_axis(squared, nearest, axis=1)
        order = np.argsort(nearest_distances, axis=1, kind="stable")
        indices[start : start + rows] = np.take_along_axis(nearest, order, axis=1)
        distances[start : start + rows] = np.maximum(np.take_along_axis(nearest_distances, order, axis=1), 0)
    return distances, indices
