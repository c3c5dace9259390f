import numpy as np
import pytest

from anchoral import validation
from anchoral.errors import ValidationError
from anchoral.validation import check_features


@pytest.fixture
def small_blocks(monkeypatch):
    monkeypatch.setattr(validation, "FINITE_CHECK_ROWS", 4)  # many blocks over a 30-row array


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_the_error_counts_the_rows_holding_a_non_finite_value(small_blocks, bad):
    features = np.random.default_rng(0).normal(size=(30, 5)).astype(np.float32)
    features[[2, 3, 17], [0, 4, 1]] = bad
    features[17, 2] = bad  # a second bad value in a row already counted
    with pytest.raises(ValidationError, match=r"NaN or infinite values in 3 row\(s\)"):
        check_features(features, "pool")


def test_plus_and_minus_infinity_in_one_block_are_caught():
    features = np.ones((10, 3), dtype=np.float32)
    features[1, 0], features[8, 2] = np.inf, -np.inf
    with pytest.raises(ValidationError, match=r"in 2 row\(s\)"):
        check_features(features)


def test_finite_values_whose_sum_overflows_float32_are_accepted(small_blocks):
    features = np.full((30, 4), 3e38, dtype=np.float32)  # every value finite, every block sum inf
    np.testing.assert_array_equal(check_features(features), features)
