"""ALVIN Table 3's batch measures, on points small enough to compute by hand."""

import math

import numpy as np
import pytest

from anchoral.errors import ValidationError
from anchoral.metrics.batch import (
    batch_diversity,
    batch_representativeness,
    batch_uncertainty,
    predictive_entropy,
)


def test_predictive_entropy_is_zero_for_certainty_and_log2_for_a_coin():
    entropy = predictive_entropy(np.array([[1.0, 0.0], [0.5, 0.5]]))
    assert entropy == pytest.approx([0.0, math.log(2)])


def test_batch_uncertainty_is_the_mean_reference_entropy_of_the_batch():
    assert batch_uncertainty(np.array([0.1, 0.2, 0.3]), np.array([0, 2])) == pytest.approx(0.2)


def test_diversity_is_the_inverse_mean_distance_to_the_nearest_batch_member():
    # Points on a line at 0, 1, 2, 3, 10; the batch holds 0 and 3.
    features = np.array([[0, 0], [1, 0], [2, 0], [3, 0], [10, 0]], dtype=float)
    # Nearest-batch distances: 0, 1, 1, 0, 7 -> mean 9/5.
    assert batch_diversity(features, np.array([0, 3]), np.arange(5)) == pytest.approx(5 / 9)


def test_diversity_is_higher_for_a_batch_that_covers_the_pool():
    features = np.array([[0, 0], [1, 0], [2, 0], [3, 0], [10, 0]], dtype=float)
    spread = batch_diversity(features, np.array([1, 4]), np.arange(5))  # distances 1, 0, 1, 2, 0
    clumped = batch_diversity(features, np.array([0, 1]), np.arange(5))  # distances 0, 0, 1, 2, 9
    assert spread == pytest.approx(5 / 4) and clumped == pytest.approx(5 / 12)


def test_representativeness_is_the_mean_cosine_to_the_k_most_similar_unlabeled_examples():
    # (1,0); (0,1); (3,3) at 45 degrees to both; (-1,0) opposite the first.
    features = np.array([[1, 0], [0, 1], [3, 3], [-1, 0]], dtype=float)
    half_root2 = math.sqrt(2) / 2
    # x0's neighbours by cosine: (3,3) 0.707, (0,1) 0, (-1,0) -1 -> top-2 mean 0.354; itself excluded.
    assert batch_representativeness(features, np.array([0]), np.arange(4), k=2) == pytest.approx(half_root2 / 2)
    # x3's: (0,1) 0, (3,3) -0.707, (1,0) -1 -> top-1 = 0; x0's top-1 = 0.707 -> batch mean 0.354.
    assert batch_representativeness(features, np.array([0, 3]), np.arange(4), k=1) == pytest.approx(half_root2 / 2)


def test_representativeness_only_looks_at_unlabeled_neighbours():
    features = np.array([[1, 0], [0, 1], [3, 3], [-1, 0]], dtype=float)
    # With (3,3) labeled, x0's most similar unlabeled example is (0,1) at cosine 0.
    assert batch_representativeness(features, np.array([0]), np.array([0, 1, 3]), k=1) == pytest.approx(0.0)


def test_an_empty_batch_is_rejected_by_name():
    with pytest.raises(ValidationError, match="batch is empty"):
        batch_diversity(np.zeros((3, 2)), np.array([], dtype=int), np.arange(3))
