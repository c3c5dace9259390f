"""Label efficiency (Tamkin et al. 2022, §5.1): how many times fewer labels a strategy
needs than random sampling to reach random sampling's final accuracy.

multiplier = (labels random needs to reach its final accuracy)
           / (labels the strategy needs to reach that same accuracy)

Curves are mean accuracy vs number of labels. "Labels needed to reach a" is the first
point where the curve reaches a, linearly interpolated from the previous point (so a
curve that crosses between 100 and 150 labels halfway gets 125). A curve that never
reaches a needs "more than its budget": the multiplier is then NaN.
"""

from __future__ import annotations

import numpy as np

from anchoral.errors import ValidationError


def labels_to_reach(n_labeled, accuracy, target: float) -> float:
    """Labels a curve needs to first reach ``target`` (interpolated); NaN if it never does."""
    n_labeled, accuracy = _check_curve(n_labeled, accuracy)
    reached = np.flatnonzero(accuracy >= target)
    if reached.size == 0:
        return float("nan")
    first = int(reached[0])
    if first == 0:
        return float(n_labeled[0])
    x0, x1 = n_labeled[first - 1], n_labeled[first]
    y0, y1 = accuracy[first - 1], accuracy[first]
    return float(x0 + (target - y0) / (y1 - y0) * (x1 - x0))


def label_efficiency(baseline_n, baseline_accuracy, strategy_n, strategy_accuracy) -> dict:
    """Tamkin et al.'s multiplier of a strategy against a baseline (random) curve.

    Returns ``target`` (the baseline's final accuracy), ``baseline_labels`` and
    ``strategy_labels`` (labels each needs to reach it) and ``multiplier``
    (baseline_labels / strategy_labels; NaN when the strategy never reaches the target).
    """
    baseline_n, baseline_accuracy = _check_curve(baseline_n, baseline_accuracy)
    target = float(baseline_accuracy[-1])
    baseline_labels = labels_to_reach(baseline_n, baseline_accuracy, target)
    strategy_labels = labels_to_reach(strategy_n, strategy_accuracy, target)
    multiplier = baseline_labels / strategy_labels if np.isfinite(strategy_labels) and strategy_labels > 0 else float("nan")
    return {"target": target, "baseline_labels": baseline_labels, "strategy_labels": strategy_labels,
            "multiplier": float(multiplier)}


def _check_curve(n_labeled, accuracy) -> tuple[np.ndarray, np.ndarray]:
    n_labeled = np.asarray(n_labeled, dtype=np.float64)
    accuracy = np.asarray(accuracy, dtype=np.float64)
    if n_labeled.ndim != 1 or n_labeled.shape != accuracy.shape or n_labeled.size == 0:
        raise ValidationError(
            f"a curve needs matching non-empty 1-D n_labeled and accuracy; got shapes {n_labeled.shape} and {accuracy.shape}"
        )
    if np.any(np.diff(n_labeled) <= 0):
        raise ValidationError(f"n_labeled must increase strictly along the curve; got {n_labeled.tolist()}")
    return n_labeled, accuracy
