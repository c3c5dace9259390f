"""Errors of an early-stopped head (the idea of JTT, Liu et al. 2021, §3).

Early in training a head has learned what is easy (the shortcut) and not yet memorised
the exceptions, so the examples it still gets wrong after ``epochs`` epochs are taken
for the minority. The correctness after each epoch is already in the FitReport of the
round's fit, so this costs no extra training when that report is given.
"""

from __future__ import annotations

import numpy as np

from anchoral.errors import ValidationError
from anchoral.groups.base import InferredGroups, check_factory, check_inputs, from_flags
from anchoral.validation import check_positive_int

NAME = "early-stopped"


def early_stopped_errors(features, labels, *, model_factory=None, fit_report=None,
                         epochs: int = 1) -> InferredGroups:
    """Minority = misclassified after ``epochs`` epochs of the fit (the last recorded one if the
    fit stopped earlier, which the diagnostics record)."""
    features, labels = check_inputs(features, labels)
    epochs = check_positive_int(epochs, "epochs")
    if fit_report is None:
        fit_report = check_factory(model_factory, NAME)().fit(features, labels)
    correctness = np.asarray(fit_report.correctness, dtype=bool)
    if correctness.ndim != 2 or correctness.shape[1] != labels.size or correctness.shape[0] == 0:
        raise ValidationError(
            f"fit_report.correctness must have at least one epoch and one column per labeled example "
            f"({labels.size}); got shape {correctness.shape}"
        )
    used = min(epochs, correctness.shape[0])
    errors = ~correctness[used - 1]
    diagnostics = {"epochs": used, "n_errors": int(errors.sum())}
    if used < epochs:
        diagnostics["fallback"] = f"the fit recorded {correctness.shape[0]} epoch(s) < {epochs}: used the last"
    return from_flags(labels, errors, np.ones(labels.size), NAME, diagnostics)
