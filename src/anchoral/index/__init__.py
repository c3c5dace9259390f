"""Nearest-neighbour search. ``knn`` is the one entry point strategies use."""

from anchoral.index.exact import exact_knn


def knn(queries, database, k: int):
    """(squared Euclidean distances, indices) of the ``k`` nearest database rows per query, nearest first."""
    return exact_knn(queries, database, k)


__all__ = ["exact_knn", "knn"]
