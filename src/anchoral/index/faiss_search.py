"""FAISS searches: the flat (exact) index and the IVF (approximate) index, with the same
contract as ``exact_knn``: ``(squared_distances, indices)``, nearest first, indices into
``database`` or, with ``rows``, positions in ``rows``.

IVF partitions the searched rows into ``n_lists`` k-means cells (trained on a seeded
sample of at most ``TRAIN_POINTS_PER_LIST`` points per cell) and scans only the
``n_probe`` cells nearest each query: faster on very large pools, but it can miss true
neighbours. Its recall against exact search is measured (``recall_at_k``,
``benchmarks/knn_speed.py``), never assumed.
"""

from __future__ import annotations

import math

import numpy as np

from anchoral.errors import ValidationError
from anchoral.index.exact import check_search
from anchoral.validation import check_positive_int

TRAIN_POINTS_PER_LIST = 40
DEFAULT_N_PROBE = 32


def _faiss():
    import faiss

    return faiss


def _searched(database: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
    chunk = database if rows is None else database[rows]
    return np.ascontiguousarray(chunk, dtype=np.float32)


def faiss_flat_knn(queries, database, k: int, *, rows=None) -> tuple[np.ndarray, np.ndarray]:
    """Exact search with ``faiss.IndexFlatL2``."""
    queries, database, rows, _ = check_search(queries, database, k, rows)
    searched = _searched(database, rows)
    index = _faiss().IndexFlatL2(searched.shape[1])
    index.add(searched)
    distances, indices = index.search(np.ascontiguousarray(queries), k)
    return np.maximum(distances, 0).astype(np.float32), indices.astype(np.int64)


def default_n_lists(n_rows: int) -> int:
    """About sqrt(N) cells, at least 1 and at most N / 39 (FAISS wants >= 39 training points per cell).

    FAISS's guide suggests 4-16 sqrt(N) for a long-lived index; here the index is rebuilt for
    every search (the representations change every round), so training time dominates and
    fewer, larger cells measured faster (benchmarks/knn_speed.py)."""
    return int(max(1, min(math.sqrt(n_rows), n_rows // 39)))


def faiss_ivf_knn(queries, database, k: int, *, rows=None, n_lists: int | None = None,
                  n_probe: int = DEFAULT_N_PROBE, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Approximate search with ``faiss.IndexIVFFlat`` (``n_lists`` cells, ``n_probe`` scanned per query).

    Deterministic for a given ``seed`` (training sample and k-means initialisation).
    Rows a query's probed cells do not hold are never returned; if fewer than ``k`` rows
    are found the missing entries are filled from an exact search of those queries, so the
    result always has ``k`` valid neighbours.
    """
    queries, database, rows, n_searched = check_search(queries, database, k, rows)
    n_lists = default_n_lists(n_searched) if n_lists is None else check_positive_int(n_lists, "n_lists")
    if n_lists > n_searched:
        raise ValidationError(f"n_lists must be at most the number of rows searched ({n_searched}); got {n_lists}")
    n_probe = min(check_positive_int(n_probe, "n_probe"), n_lists)
    faiss = _faiss()
    searched = _searched(database, rows)
    dimension = searched.shape[1]
    quantizer = faiss.IndexFlatL2(dimension)
    index = faiss.IndexIVFFlat(quantizer, dimension, n_lists, faiss.METRIC_L2)
    index.cp.seed = int(seed)
    sample_size = min(n_searched, n_lists * TRAIN_POINTS_PER_LIST)
    sample = np.random.default_rng(seed).choice(n_searched, size=sample_size, replace=False)
    index.train(searched[np.sort(sample)])
    index.add(searched)
    index.nprobe = n_probe
    distances, indices = index.search(np.ascontiguousarray(queries), k)
    short = (indices < 0).any(axis=1)
    if short.any():
        from anchoral.index.exact import exact_knn

        distances[short], indices[short] = exact_knn(queries[short], searched, k)
    return np.maximum(distances, 0).astype(np.float32), indices.astype(np.int64)


def recall_at_k(found: np.ndarray, exact: np.ndarray) -> float:
    """Share of the exact k nearest neighbours (per query) that ``found`` contains, averaged."""
    found, exact = np.asarray(found), np.asarray(exact)
    if found.shape != exact.shape or found.ndim != 2:
        raise ValidationError(f"found and exact must be (n_queries, k) arrays of one shape; got {found.shape} and {exact.shape}")
    hits = sum(np.intersect1d(a, b).size for a, b in zip(found, exact))
    return hits / exact.size
