"""What a label-free group inference returns, and the pieces every method shares.

A method sees only what a deployment has: the labeled examples' features and labels,
optionally the pretrained features of the whole pool, and a factory of fresh models.
It never sees a true group. Its answer assigns each labeled example a *cell* (class x
inferred group) and says which examples it takes for the minority.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from anchoral.errors import ValidationError
from anchoral.validation import check_features, check_labels

ModelFactory = Callable[[], object]
"""Returns a fresh, unfitted model with ``fit(features, labels)`` and ``predict_proba(features)``."""


@dataclass(frozen=True)
class InferredGroups:
    """One inference over the labeled set (arrays aligned with the labeled examples).

    Attributes
    ----------
    cells : int array; examples with the same cell id share a class and an inferred group.
        Ids are ``label * n_groups_per_class + group``.
    minority : bool array; the examples the method takes for the minority of their class.
    confidence : float array in [0, 1]; how sure the method is of each assignment.
    uncertain : bool array; assignments below the method's confidence margin.
    method : the method's registered name.
    diagnostics : method-specific facts (fold count, cluster sizes, fallbacks, ...).
    """

    cells: np.ndarray
    minority: np.ndarray
    confidence: np.ndarray
    uncertain: np.ndarray
    method: str
    diagnostics: dict = field(default_factory=dict)

    @property
    def n_cells(self) -> int:
        """Distinct cells that hold at least one example."""
        return int(np.unique(self.cells).size)


def from_flags(labels: np.ndarray, flags: np.ndarray, confidence: np.ndarray, method: str,
               diagnostics: dict | None = None, uncertain: np.ndarray | None = None) -> InferredGroups:
    """Cells (class x flag) from a per-example minority flag, e.g. 'misclassified'."""
    flags = np.asarray(flags, dtype=bool)
    return InferredGroups(
        cells=labels.astype(np.int64) * 2 + flags,
        minority=flags,
        confidence=np.clip(np.asarray(confidence, dtype=np.float64), 0.0, 1.0),
        uncertain=np.zeros(flags.size, dtype=bool) if uncertain is None else np.asarray(uncertain, dtype=bool),
        method=method,
        diagnostics=dict(diagnostics or {}),
    )


def smaller_cells_are_minority(labels: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Within each class, every cell smaller than the class's largest cell is minority."""
    sizes = np.bincount(cells)
    largest_in_class = np.zeros(int(labels.max()) + 1, dtype=np.int64)
    np.maximum.at(largest_in_class, labels, sizes[cells])
    return sizes[cells] < largest_in_class[labels]


def check_inputs(features, labels) -> tuple[np.ndarray, np.ndarray]:
    """The labeled features and labels, validated and aligned."""
    features = check_features(features, "features")
    labels = check_labels(labels, features.shape[0], "labels")
    if labels.size == 0:
        raise ValidationError("group inference needs at least one labeled example; got none")
    return features, labels


def check_factory(model_factory, method: str) -> ModelFactory:
    if model_factory is None or not callable(model_factory):
        raise ValidationError(
            f"group inference {method!r} trains models on the labeled set: pass model_factory, a callable that "
            f"returns a fresh model; got {model_factory!r}"
        )
    return model_factory


def true_class_probability(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return probabilities[np.arange(labels.size), labels]


def error_confidence(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """How clearly an example is right or wrong: |p(true class) - best other class probability|."""
    true = true_class_probability(probabilities, labels)
    others = probabilities.copy()
    others[np.arange(labels.size), labels] = -np.inf
    return np.abs(true - others.max(axis=1))
