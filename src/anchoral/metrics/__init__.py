"""Accuracy by split and group, and analyses of selections."""

from anchoral.metrics.accuracy import accuracy, group_accuracies, worst_group_accuracy
from anchoral.metrics.minority import minority_inference_quality
from anchoral.metrics.selection import upsampling_ratios

__all__ = ["accuracy", "group_accuracies", "minority_inference_quality", "upsampling_ratios", "worst_group_accuracy"]
