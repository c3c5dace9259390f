"""Accuracy by split and group, and analyses of selections."""

from anchoral.metrics.accuracy import accuracy, group_accuracies, worst_group_accuracy
from anchoral.metrics.batch import batch_diversity, batch_representativeness, batch_uncertainty, predictive_entropy
from anchoral.metrics.efficiency import label_efficiency, labels_to_reach
from anchoral.metrics.minority import minority_inference_quality
from anchoral.metrics.selection import upsampling_ratios

__all__ = [
    "accuracy",
    "batch_diversity",
    "batch_representativeness",
    "batch_uncertainty",
    "group_accuracies",
    "label_efficiency",
    "labels_to_reach",
    "minority_inference_quality",
    "predictive_entropy",
    "upsampling_ratios",
    "worst_group_accuracy",
]
