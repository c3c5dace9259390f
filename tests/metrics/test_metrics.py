import numpy as np
import pytest

from anchoral.errors import ValidationError
from anchoral.metrics import accuracy, group_accuracies, upsampling_ratios, worst_group_accuracy


def test_group_accuracies_and_the_worst_group():
    labels = np.array([0, 0, 1, 1, 1, 0])
    predictions = np.array([0, 1, 1, 1, 0, 0])
    groups = np.array([0, 0, 1, 1, 2, 2])
    np.testing.assert_allclose(group_accuracies(labels, predictions, groups, 4), [0.5, 1.0, 0.5, np.nan])
    assert worst_group_accuracy(labels, predictions, groups, 4) == 0.5
    assert accuracy(labels, predictions) == pytest.approx(4 / 6)


def test_upsampling_ratio_is_acquired_share_over_pool_share():
    pool_groups = np.array([0] * 90 + [1] * 10)  # group 1 is 10% of the pool
    acquired = np.array([0, 0, 0, 1, 1])          # ... and 40% of what was acquired
    np.testing.assert_allclose(upsampling_ratios(acquired, pool_groups, 3), [0.6 / 0.9, 4.0, np.nan])


def test_upsampling_of_nothing_acquired_is_undefined():
    assert np.isnan(upsampling_ratios(np.array([], dtype=int), np.array([0, 1]), 2)).all()


def test_metrics_reject_mismatched_or_empty_input():
    with pytest.raises(ValidationError, match="same shape"):
        accuracy(np.array([0, 1]), np.array([0]))
    with pytest.raises(ValidationError, match="empty"):
        accuracy(np.array([]), np.array([]))
