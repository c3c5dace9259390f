"""Accuracy by split and group, and analyses of selections."""

from anchoral.metrics.accuracy import accuracy, group_accuracies, worst_group_accuracy
from anchoral.metrics.selection import upsampling_ratios

__all__ = ["accuracy", "group_accuracies", "upsampling_ratios", "worst_group_accuracy"]
