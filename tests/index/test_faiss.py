import numpy as np
import pytest

from anchoral.errors import UnknownNameError, ValidationError
from anchoral.index import choose_method, exact_knn, faiss_flat_knn, faiss_ivf_knn, knn, recall_at_k


def clustered(n, d, seed, centres=20):
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=4.0, size=(centres, d))
    return (means[rng.integers(centres, size=n)] + rng.normal(size=(n, d))).astype(np.float32)


def test_faiss_flat_gives_the_exact_neighbours():
    database, queries = clustered(2000, 24, 0), clustered(60, 24, 1)
    exact = exact_knn(queries, database, 10)
    flat = faiss_flat_knn(queries, database, 10)
    np.testing.assert_array_equal(flat[1], exact[1])
    np.testing.assert_allclose(flat[0], exact[0], rtol=1e-3, atol=1e-3)


def test_ivf_recall_is_measured_and_grows_with_the_cells_probed():
    database, queries = clustered(6000, 24, 2), clustered(200, 24, 3)
    exact = exact_knn(queries, database, 10)[1]
    recalls = [recall_at_k(faiss_ivf_knn(queries, database, 10, n_lists=64, n_probe=p)[1], exact) for p in (1, 8, 64)]
    assert recalls[0] < recalls[1] <= recalls[2]
    assert recalls[2] == 1.0  # probing every cell is exhaustive
    assert recalls[0] < 1.0  # one cell misses neighbours: recall is measured, not assumed


def test_ivf_is_deterministic_and_honours_rows():
    database, queries = clustered(3000, 16, 4), clustered(30, 16, 5)
    rows = np.arange(1, 3000, 2)
    first = faiss_ivf_knn(queries, database, 5, rows=rows, n_lists=32, n_probe=32)
    second = faiss_ivf_knn(queries, database, 5, rows=rows, n_lists=32, n_probe=32)
    np.testing.assert_array_equal(first[1], second[1])
    np.testing.assert_array_equal(first[1], exact_knn(queries, database, 5, rows=rows)[1])


def test_recall_at_k_on_hand_made_neighbour_lists():
    assert recall_at_k(np.array([[1, 2], [3, 4]]), np.array([[2, 1], [3, 5]])) == 0.75
    with pytest.raises(ValidationError, match="one shape"):
        recall_at_k(np.array([[1, 2]]), np.array([[1, 2, 3]]))


def test_auto_is_exact_for_the_strategies_searches_and_can_be_overridden(monkeypatch):
    monkeypatch.delenv("ANCHORAL_KNN", raising=False)
    assert choose_method(1500, 100_000) == "exact"
    assert choose_method(1500, 1_000_000) == "exact"
    assert choose_method(10**6, 10**7) == "faiss-ivf"
    assert choose_method(1500, 1_000_000, "faiss-flat") == "faiss-flat"
    monkeypatch.setenv("ANCHORAL_KNN", "faiss-ivf")
    assert choose_method(10, 100) == "faiss-ivf"
    monkeypatch.setenv("ANCHORAL_KNN", "annoy")
    with pytest.raises(UnknownNameError, match="annoy"):
        knn(np.zeros((1, 2), np.float32), np.zeros((3, 2), np.float32), 1)


@pytest.mark.parametrize("n_lists, message", [(0, "n_lists must be"), (5000, "n_lists must be at most")])
def test_bad_ivf_parameters_are_rejected(n_lists, message):
    database = clustered(100, 4, 6)
    with pytest.raises(ValidationError, match=message):
        faiss_ivf_knn(database[:2], database, 1, n_lists=n_lists)
