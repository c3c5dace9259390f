"""Accuracy by split and by group; worst-group accuracy (Sagawa et al. 2020)."""

from __future__ import annotations

import numpy as np

from anchoral.errors import ValidationError


def accuracy(labels: np.ndarray, predictions: np.ndarray) -> float:
    labels = np.asarray(labels)
    predictions = np.asarray(predictions)
    if labels.shape != predictions.shape:
        raise ValidationError(f"labels and predictions must have the same shape; got {labels.shape} and {predictions.shape}")
    if labels.size == 0:
        raise ValidationError("accuracy of an empty set is undefined; got 0 labels")
    return float(np.mean(labels == predictions))


def group_accuracies(labels: np.ndarray, predictions: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Accuracy within each group id in [0, n_groups); NaN for groups with no examples."""
    labels, predictions, groups = map(np.asarray, (labels, predictions, groups))
    correct = np.bincount(groups, weights=(labels == predictions).astype(float), minlength=n_groups)
    counts = np.bincount(groups, minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, correct / np.maximum(counts, 1), np.nan)[:n_groups]


def worst_group_accuracy(labels: np.ndarray, predictions: np.ndarray, groups: np.ndarray, n_groups: int) -> float:
    """The lowest accuracy over the groups that have examples."""
    per_group = group_accuracies(labels, predictions, groups, n_groups)
    if np.all(np.isnan(per_group)):
        raise ValidationError("worst-group accuracy needs at least one non-empty group")
    return float(np.nanmin(per_group))
