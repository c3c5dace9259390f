import numpy as np
import pytest

from anchoral.errors import ValidationError
from anchoral.metrics.minority import minority_inference_quality

LABELED = np.array([10, 11, 12, 13, 14])
TRULY_MINORITY = np.array([True, True, False, False, True])


def test_recall_and_precision_of_the_inferred_minority_by_hand():
    quality = minority_inference_quality([10, 12], LABELED, TRULY_MINORITY)
    assert quality == {"recall": pytest.approx(1 / 3), "precision": pytest.approx(1 / 2), "n_true_minority": 3, "n_inferred": 2}


def test_accepts_alvins_per_class_diagnostics():
    per_class = {"0": [10], "1": [12, 14]}
    assert minority_inference_quality(per_class, LABELED, TRULY_MINORITY) == minority_inference_quality(
        [10, 12, 14], LABELED, TRULY_MINORITY
    )


def test_perfect_inference_scores_one():
    quality = minority_inference_quality([14, 11, 10], LABELED, TRULY_MINORITY)
    assert (quality["recall"], quality["precision"]) == (1.0, 1.0)


def test_undefined_ratios_are_nan():
    nothing_flagged = minority_inference_quality([], LABELED, TRULY_MINORITY)
    assert nothing_flagged["recall"] == 0.0 and np.isnan(nothing_flagged["precision"])
    no_true_minority = minority_inference_quality([11], LABELED, np.zeros(5, dtype=bool))
    assert np.isnan(no_true_minority["recall"]) and no_true_minority["precision"] == 0.0


def test_rejects_inferred_indices_outside_the_labeled_set_and_misaligned_groups():
    with pytest.raises(ValidationError, match="must be labeled pool indices"):
        minority_inference_quality([10, 99], LABELED, TRULY_MINORITY)
    with pytest.raises(ValidationError, match="one entry per labeled index"):
        minority_inference_quality([10], LABELED, TRULY_MINORITY[:3])
    with pytest.raises(ValidationError, match="bool array"):
        minority_inference_quality([10], LABELED, TRULY_MINORITY.astype(int))
