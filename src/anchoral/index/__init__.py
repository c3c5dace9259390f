"""Nearest-neighbour search. ``knn`` is the one entry point strategies use.

Methods:
- ``"exact"``: tiled float32 GEMM + running top-k (``exact.py``), bounded memory;
- ``"faiss-flat"``: ``faiss.IndexFlatL2`` (exact, slower here; kept for comparison);
- ``"faiss-ivf"``: ``faiss.IndexIVFFlat`` (approximate; recall measured, not assumed);
- ``"auto"`` (default): exact search unless the search is so large that IVF measured
  faster on this project's reference machine (``AUTO_IVF_MIN_WORK`` query x row pairs and
  at least ``AUTO_IVF_MIN_ROWS`` rows); the ``ANCHORAL_KNN`` environment variable, or the
  ``method`` argument, overrides the choice.
"""

from __future__ import annotations

import os

from anchoral.errors import unknown_name
from anchoral.index.exact import check_search, exact_knn
from anchoral.index.faiss_search import faiss_flat_knn, faiss_ivf_knn, recall_at_k

METHODS = {
    "exact": "tiled float32 GEMM + running top-k (exact)",
    "faiss-flat": "faiss.IndexFlatL2 (exact)",
    "faiss-ivf": "faiss.IndexIVFFlat (approximate, measured recall)",
    "auto": "exact, or faiss-ivf for very large searches",
}
METHOD_ENV = "ANCHORAL_KNN"
# IVF pays for training and adding every row before it searches; below this much work it
# never won in benchmarks/knn_speed.py, so "auto" stays exact (see docs/performance.md).
AUTO_IVF_MIN_WORK = 10**13
AUTO_IVF_MIN_ROWS = 2_000_000


def choose_method(n_queries: int, n_rows: int, method: str = "auto") -> str:
    """The concrete method ``knn`` uses for a search of ``n_queries`` over ``n_rows`` rows."""
    if method == "auto":
        method = os.environ.get(METHOD_ENV, "").strip() or "auto"
    if method not in METHODS:
        raise unknown_name("nearest-neighbour method", method, METHODS)
    if method != "auto":
        return method
    if n_rows >= AUTO_IVF_MIN_ROWS and n_queries * n_rows >= AUTO_IVF_MIN_WORK:
        return "faiss-ivf"
    return "exact"


def knn(queries, database, k: int, *, rows=None, method: str = "auto"):
    """(squared Euclidean distances, indices) of the ``k`` nearest rows of ``database`` per query,
    nearest first; with ``rows``, only ``database[rows]`` is searched (without copying the rest)
    and indices are positions in ``rows``."""
    queries_checked, database_checked, rows_checked, n_searched = check_search(queries, database, k, rows)
    chosen = choose_method(queries_checked.shape[0], n_searched, method)
    search = {"exact": exact_knn, "faiss-flat": faiss_flat_knn, "faiss-ivf": faiss_ivf_knn}[chosen]
    return search(queries_checked, database_checked, k, rows=rows_checked)


__all__ = ["METHODS", "choose_method", "exact_knn", "faiss_flat_knn", "faiss_ivf_knn", "knn", "recall_at_k"]
