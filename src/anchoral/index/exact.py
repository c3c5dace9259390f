"""Exact k-nearest-neighbour search: tiled float32 GEMM with a running top-k.

Squared Euclidean distances come from ||q||^2 - 2 q.x + ||x||^2. The database is
walked in blocks of rows (gathered from ``rows`` when only part of it is searched, so
the caller never copies a subset of a large, possibly memory-mapped pool) and the
queries in blocks, so memory stays at one ``query block x database block`` tile of
floats plus one gathered database block, whatever N is.

The top-k is kept incrementally: the first block's k best per query come from a
value partition and one comparison (``smallest_k_positions``); for every later block
only the entries under the query's current k-th best distance are merged (after a few
blocks that is a handful per query), so selection costs one comparison per distance
instead of a partition of every row.
On one CPU this beats ``faiss.IndexFlatL2`` for the few-thousand-query searches the
strategies make (DESIGN.md, Real components; ``benchmarks/knn_speed.py`` measures it).
"""

from __future__ import annotations

import numpy as np

from anchoral.errors import ValidationError
from anchoral.validation import check_features

DEFAULT_BLOCK_BYTES = 256 * 2**20
DATABASE_BLOCK_ROWS = 8192
MAX_QUERY_BLOCK_ROWS = 4096


def check_search(queries, database, k, rows) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, int]:
    """Validate a search; return (queries, database, rows, n_searched) with float32 2-D arrays."""
    queries = check_features(queries, "queries")
    database = _check_database(database)
    if queries.shape[1] != database.shape[1]:
        raise ValidationError(
            f"queries have {queries.shape[1]} columns but the database has {database.shape[1]}; they must match"
        )
    if rows is not None:
        rows = np.asarray(rows)
        if rows.ndim != 1 or (rows.size and not np.issubdtype(rows.dtype, np.integer)):
            raise ValidationError(f"rows must be a 1-D array of database row indices; got shape {rows.shape}, dtype {rows.dtype}")
        rows = rows.astype(np.int64, copy=False)
        if rows.size and (rows.min() < 0 or rows.max() >= database.shape[0]):
            raise ValidationError(f"rows must index the database's {database.shape[0]} rows; got values in "
                                  f"[{rows.min()}, {rows.max()}]")
    n_searched = database.shape[0] if rows is None else rows.size
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 < k <= n_searched:
        raise ValidationError(f"k must be an integer in [1, {n_searched}] (the number of rows searched); got {k!r}")
    return queries, database, rows, n_searched


def _check_database(database) -> np.ndarray:
    """Like ``check_features`` but without reading a float32 (possibly memory-mapped) array through."""
    if isinstance(database, np.ndarray) and database.dtype == np.float32 and database.ndim == 2:
        if database.shape[0] == 0 or database.shape[1] == 0:
            raise ValidationError(f"database must be non-empty; got shape {database.shape}")
        return database
    return check_features(database, "database")


def exact_knn(queries, database, k: int, *, rows=None, block_bytes: int = DEFAULT_BLOCK_BYTES,
              database_block_rows: int = DATABASE_BLOCK_ROWS) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest rows of ``database`` (or of ``database[rows]``) for every query.

    Returns ``(squared_distances, indices)``, both (n_queries, k), nearest first (equal
    distances by lower index). With ``rows`` the indices are positions in ``rows``, as if the search had
    been over ``database[rows]``. Distances are clipped at 0 (the expansion can go slightly
    negative in float32).
    """
    queries, database, rows, n_searched = check_search(queries, database, k, rows)
    database_rows = min(database_block_rows, n_searched)
    query_rows = max(1, min(MAX_QUERY_BLOCK_ROWS, block_bytes // (4 * database_rows)))
    distances = np.empty((queries.shape[0], k), dtype=np.float32)
    indices = np.empty((queries.shape[0], k), dtype=np.int64)
    blocks = [(start, min(start + database_rows, n_searched)) for start in range(0, n_searched, database_rows)]
    for start in range(0, queries.shape[0], query_rows):
        block = queries[start : start + query_rows]
        best, best_index = _block_top_k(block, database, rows, blocks, k)
        best += np.einsum("ij,ij->i", block, block)[:, None]
        # One block: each row's positions come in increasing order, so a stable sort by
        # distance orders equal distances by lower index, as the lexsort does (at half its cost).
        order = np.argsort(best, axis=1, kind="stable") if len(blocks) == 1 else np.lexsort((best_index, best), axis=1)
        indices[start : start + query_rows] = np.take_along_axis(best_index, order, axis=1)
        distances[start : start + query_rows] = np.maximum(np.take_along_axis(best, order, axis=1), 0)
    return distances, indices


def smallest_k_positions(values: np.ndarray, k: int) -> np.ndarray:
    """Column positions of the ``k`` smallest entries of every row of ``values``, each row's in
    increasing column order; among entries equal to a row's k-th smallest, the lowest columns.

    ``np.partition`` finds each row's k-th smallest value (3-4x faster here than
    ``np.argpartition``, which has no SIMD path for float32 rows), one comparison marks the
    entries at or under it, and ``flatnonzero`` reads them off. Rows with more than ``k``
    marked entries (ties at the k-th value) are resolved by a stable sort of those rows only.
    """
    n, m = values.shape
    if k >= m:
        return np.broadcast_to(np.arange(m), (n, m)).copy()
    if k == 1:
        return values.argmin(axis=1)[:, None]  # the first (lowest) position of each row's minimum
    kth = np.partition(values, k - 1, axis=1)[:, k - 1]
    mask = values <= kth[:, None]
    hits = np.flatnonzero(mask)
    if hits.size == n * k:  # every row has at least k marked entries, so exactly k each
        return (hits % m).reshape(n, k)
    counts = np.count_nonzero(mask, axis=1)
    tied = np.flatnonzero(counts > k)
    positions = np.empty((n, k), dtype=np.int64)
    exact = counts == k
    hit_rows = hits // m
    positions[exact] = (hits[exact[hit_rows]] % m).reshape(-1, k)
    positions[tied] = np.sort(np.argsort(values[tied], axis=1, kind="stable")[:, :k], axis=1)
    return positions


def _augmented_block(database: np.ndarray, rows: np.ndarray | None, start: int, stop: int) -> np.ndarray:
    """Rows ``start:stop`` of the searched set as ``[x, ||x||^2]`` (float32, contiguous)."""
    chunk = database[start:stop] if rows is None else database[rows[start:stop]]
    augmented = np.empty((chunk.shape[0], chunk.shape[1] + 1), dtype=np.float32)
    augmented[:, :-1] = chunk
    augmented[:, -1] = np.einsum("ij,ij->i", augmented[:, :-1], augmented[:, :-1])
    return augmented


def _block_top_k(query_block: np.ndarray, database, rows, blocks, k: int) -> tuple[np.ndarray, np.ndarray]:
    """k smallest of ``||x||^2 - 2 q.x`` per query over every database block (unsorted).

    One GEMM per block gives the whole expression: the queries, scaled by -2, carry a
    trailing 1 and the block a trailing ||x||^2. The product and the comparison mask reuse
    two buffers across blocks (fresh tile-sized arrays per block cost page faults
    comparable to the GEMM)."""
    n = query_block.shape[0]
    queries = np.empty((n, query_block.shape[1] + 1), dtype=np.float32)
    np.multiply(query_block, np.float32(-2), out=queries[:, :-1])
    queries[:, -1] = 1.0
    best = np.full((n, k), np.inf, dtype=np.float32)
    best_index = np.full((n, k), -1, dtype=np.int64)
    threshold = np.full(n, np.inf, dtype=np.float32)
    width = max(stop - start for start, stop in blocks)
    product_buffer = np.empty((n, width), dtype=np.float32)
    mask_buffer = np.empty((n, width), dtype=bool)
    for number, (start, stop) in enumerate(blocks):
        chunk = _augmented_block(database, rows, start, stop)
        partial = product_buffer if stop - start == width else np.empty((n, stop - start), dtype=np.float32)
        np.matmul(queries, chunk.T, out=partial)
        if number == 0 and partial.shape[1] >= k:  # the usual start: the first block alone fills the top-k
            nearest = smallest_k_positions(partial, k)
            best = np.take_along_axis(partial, nearest, axis=1)
            best_index = nearest + start
            threshold = best.max(axis=1)
            continue
        mask = mask_buffer if partial is product_buffer else np.empty(partial.shape, dtype=bool)
        np.less(partial, threshold[:, None], out=mask)
        # flatnonzero + divmod: 3-4x faster than a 2-D np.nonzero on these masks.
        hits = np.flatnonzero(mask)
        if hits.size:
            hit_rows, hit_cols = np.divmod(hits, partial.shape[1])
            _merge(best, best_index, threshold, hit_rows, partial.ravel()[hits], hit_cols + start, k)
    return best, best_index


def _merge(best, best_index, threshold, hit_rows, hit_values, hit_indices, k: int) -> None:
    """Fold new candidates (sorted by row, as ``np.nonzero`` returns them) into each row's top-k, in place."""
    touched = np.unique(hit_rows)
    all_rows = np.concatenate([np.repeat(touched, k), hit_rows])
    all_values = np.concatenate([best[touched].ravel(), hit_values])
    all_indices = np.concatenate([best_index[touched].ravel(), hit_indices])
    order = np.lexsort((all_indices, all_values, all_rows))
    first = np.searchsorted(all_rows[order], touched)
    take = order[(first[:, None] + np.arange(k)).ravel()]
    best[touched] = all_values[take].reshape(-1, k)
    best_index[touched] = all_indices[take].reshape(-1, k)
    threshold[touched] = best[touched].max(axis=1)
