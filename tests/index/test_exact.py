import numpy as np
import pytest

from anchoral.errors import ValidationError
from anchoral.index import exact_knn, knn
from anchoral.index.exact import smallest_k_positions


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


@pytest.mark.parametrize("database_block_rows", [1, 7, 64, 8192])  # the running top-k merges across blocks
@pytest.mark.parametrize("block_bytes", [64, 2**28])
def test_tiled_search_matches_brute_force_across_database_blocks(database_block_rows, block_bytes):
    rng = np.random.default_rng(2)
    database = rng.normal(size=(500, 12)).astype(np.float32)
    queries = rng.normal(size=(33, 12)).astype(np.float32)
    distances, indices = exact_knn(queries, database, 9, block_bytes=block_bytes,
                                   database_block_rows=database_block_rows)
    expected_distances, expected_indices = brute_force(queries, database, 9)
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_allclose(distances, expected_distances, rtol=1e-4, atol=1e-4)


def test_a_database_sorted_far_to_near_still_gives_the_exact_neighbours():
    """The worst order for the running top-k: every block improves every query's k best."""
    rng = np.random.default_rng(3)
    queries = np.zeros((4, 5), dtype=np.float32)
    database = rng.normal(size=(400, 5)).astype(np.float32)
    database = database[np.argsort(-(database**2).sum(axis=1))]
    distances, indices = exact_knn(queries, database, 6, database_block_rows=16)
    np.testing.assert_array_equal(indices, brute_force(queries, database, 6)[1])
    np.testing.assert_array_equal(indices[0], np.arange(399, 393, -1))


def test_rows_searches_a_subset_without_copying_and_returns_positions_in_it():
    rng = np.random.default_rng(4)
    database = rng.normal(size=(300, 8)).astype(np.float32)
    queries = rng.normal(size=(20, 8)).astype(np.float32)
    rows = np.sort(rng.choice(300, size=120, replace=False))
    distances, positions = exact_knn(queries, database, 5, rows=rows, database_block_rows=32)
    expected_distances, expected_positions = brute_force(queries, database[rows], 5)
    np.testing.assert_array_equal(positions, expected_positions)
    np.testing.assert_allclose(distances, expected_distances, rtol=1e-4, atol=1e-4)


def test_a_memory_mapped_database_gives_the_same_neighbours(tmp_path):
    rng = np.random.default_rng(5)
    database = rng.normal(size=(700, 16)).astype(np.float32)
    queries = rng.normal(size=(25, 16)).astype(np.float32)
    path = tmp_path / "pool.npy"
    np.save(path, database)
    mapped = np.load(path, mmap_mode="r")
    rows = np.arange(0, 700, 3)
    for method in ("exact", "faiss-flat"):
        in_memory = knn(queries, database, 4, rows=rows, method=method)
        from_disk = knn(queries, mapped, 4, rows=rows, method=method)
        np.testing.assert_array_equal(in_memory[1], from_disk[1])


@pytest.mark.parametrize("rows", [np.array([[1, 2]]), np.array([0.5, 1.0]), np.array([0, 50])])
def test_bad_rows_are_rejected(rows):
    data = np.zeros((50, 4), dtype=np.float32)
    with pytest.raises(ValidationError, match="rows must"):
        knn(data[:2], data, 1, rows=rows)


def reference_smallest_k(values, k):
    """Positions of the k smallest per row, equal values by lower position, in increasing order."""
    return np.sort(np.argsort(values, axis=1, kind="stable")[:, :k], axis=1)


@pytest.mark.parametrize("k", [1, 2, 10, 39, 40])
def test_smallest_k_positions_equals_a_stable_sort_on_distinct_values(k):
    values = np.random.default_rng(5).normal(size=(300, 40)).astype(np.float32)
    np.testing.assert_array_equal(smallest_k_positions(values, k), reference_smallest_k(values, k))


@pytest.mark.parametrize("k", [1, 3, 7])
def test_smallest_k_positions_takes_the_lowest_positions_among_ties_at_the_kth_value(k):
    # Values from {0, 1, 2}: almost every row has ties at its k-th smallest value.
    values = np.random.default_rng(6).integers(0, 3, size=(200, 12)).astype(np.float32)
    values[0] = 1.0  # a row that is all one tie
    np.testing.assert_array_equal(smallest_k_positions(values, k), reference_smallest_k(values, k))


def test_a_small_database_with_duplicate_rows_gives_the_lower_index_first():
    rng = np.random.default_rng(7)
    database = np.repeat(rng.normal(size=(20, 6)).astype(np.float32), 3, axis=0)  # every row three times
    queries = rng.normal(size=(500, 6)).astype(np.float32)
    distances, indices = exact_knn(queries, database, 5)
    expected_distances, expected_indices = brute_force(queries, database, 5)
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_allclose(distances, expected_distances, rtol=1e-4, atol=1e-4)
