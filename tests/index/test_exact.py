import numpy as np
import pytest

from anchoral.errors import ValidationError
from anchoral.index import exact_knn, knn


def brute_force(queries, database, k):
    distances = ((queries[:, None, :].astype(np.float64) - database[None, :, :]) ** 2).sum(axis=2)
    order = np.argsort(distances, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(distances, order, axis=1), order


@pytest.mark.parametrize("block_bytes", [64, 4096, 2**28])  # many tiny blocks .. one block
def test_matches_brute_force_distances_and_neighbours(block_bytes):
    rng = np.random.default_rng(0)
    database = rng.normal(size=(300, 16)).astype(np.float32)
    queries = rng.normal(size=(45, 16)).astype(np.float32)
    distances, indices = exact_knn(queries, database, 7, block_bytes=block_bytes)
    expected_distances, expected_indices = brute_force(queries, database, 7)
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_allclose(distances, expected_distances, rtol=1e-4, atol=1e-4)


def test_a_point_in_the_database_is_its_own_nearest_neighbour_at_distance_zero():
    rng = np.random.default_rng(1)
    database = rng.normal(size=(50, 8)).astype(np.float32)
    distances, indices = knn(database[:5], database, 1)
    np.testing.assert_array_equal(indices[:, 0], np.arange(5))
    np.testing.assert_allclose(distances[:, 0], 0, atol=1e-4)
    assert (distances >= 0).all()


def test_k_equal_to_the_database_size_returns_everything_sorted():
    database = np.array([[0.0], [3.0], [1.0]], dtype=np.float32)
    distances, indices = knn(np.array([[0.0]], dtype=np.float32), database, 3)
    assert indices.tolist() == [[0, 2, 1]]
    np.testing.assert_allclose(distances, [[0, 1, 9]])


@pytest.mark.parametrize("k", [0, 51, 2.0])
def test_bad_k_is_rejected(k):
    data = np.zeros((50, 4), dtype=np.float32)
    with pytest.raises(ValidationError, match="k must be"):
        knn(data, data, k)


def test_mismatched_widths_are_rejected():
    with pytest.raises(ValidationError, match="columns"):
        knn(np.zeros((2, 3)), np.zeros((5, 4)), 1)
