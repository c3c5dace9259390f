"""Tamkin et al.'s label-efficiency multiplier on hand-made learning curves."""

import math

import pytest

from anchoral.errors import ValidationError
from anchoral.metrics.efficiency import label_efficiency, labels_to_reach

LABELS = [10, 20, 30, 40]
RANDOM = [0.5, 0.6, 0.7, 0.8]


def test_labels_to_reach_interpolates_between_rounds():
    assert labels_to_reach(LABELS, [0.5, 0.7, 0.9, 0.9], 0.8) == pytest.approx(25.0)


def test_labels_to_reach_is_the_first_point_when_the_curve_starts_above_the_target():
    assert labels_to_reach(LABELS, [0.85, 0.9, 0.9, 0.9], 0.8) == 10


def test_a_curve_that_never_reaches_the_target_needs_nan_labels():
    assert math.isnan(labels_to_reach(LABELS, [0.5, 0.6, 0.7, 0.75], 0.8))


def test_multiplier_is_baseline_labels_over_strategy_labels():
    result = label_efficiency(LABELS, RANDOM, LABELS, [0.5, 0.7, 0.9, 0.9])
    assert result == pytest.approx({"target": 0.8, "baseline_labels": 40.0, "strategy_labels": 25.0,
                                    "multiplier": 1.6})


def test_a_strategy_reaching_random_final_accuracy_with_the_seed_set_gets_budget_over_seed():
    assert label_efficiency(LABELS, RANDOM, LABELS, [0.8, 0.8, 0.8, 0.8])["multiplier"] == pytest.approx(4.0)


def test_the_baseline_needs_fewer_labels_when_it_peaked_before_its_final_round():
    # Random's final accuracy 0.75 is first reached between 10 (0.5) and 20 (0.8): at 10 + 10 * 0.25 / 0.3.
    result = label_efficiency(LABELS, [0.5, 0.8, 0.7, 0.75], LABELS, [0.75, 0.8, 0.8, 0.8])
    assert result["baseline_labels"] == pytest.approx(10 + 10 * 0.25 / 0.3)
    assert result["multiplier"] == pytest.approx((10 + 10 * 0.25 / 0.3) / 10)


def test_a_strategy_that_never_gets_there_has_no_multiplier():
    assert math.isnan(label_efficiency(LABELS, RANDOM, LABELS, [0.5, 0.5, 0.5, 0.5])["multiplier"])


def test_curves_must_have_increasing_label_counts():
    with pytest.raises(ValidationError, match="increase strictly"):
        labels_to_reach([10, 10, 20], [0.1, 0.2, 0.3], 0.2)
