"""The ALVIN paper's rule (§2.2, "Inferring Minority/Majority Examples"): training dynamics.

An example is minority if it was forgotten at least once during the fit (correct after
epoch t, incorrect after epoch t + 1) or was never predicted correctly.
"""

from __future__ import annotations

import numpy as np

from anchoral.errors import ValidationError
from anchoral.groups.base import InferredGroups, check_factory, check_inputs, from_flags

NAME = "dynamics"


def infer_minority(correctness: np.ndarray) -> np.ndarray:
    """Which training examples are minority, from per-epoch correctness (ALVIN §2.2).

    ``correctness[t, i]`` says whether example i was predicted correctly after epoch t
    (``FitReport.correctness``). Example i is minority if it was forgotten at least
    once (correct after epoch t, incorrect after epoch t + 1) or was never correct;
    every other example, including one learned late and kept, is majority.

    Returns a bool array with one entry per column of ``correctness``.
    """
    correctness = np.asarray(correctness)
    if correctness.ndim != 2:
        raise ValidationError(
            f"correctness must be a 2-D array (n_epochs, n_examples); got shape {correctness.shape}"
        )
    if correctness.dtype != bool:
        if not np.isin(correctness, (0, 1)).all():
            raise ValidationError("correctness must hold booleans (or 0/1): whether each example was predicted correctly")
        correctness = correctness.astype(bool)
    if correctness.shape[0] < 2:
        raise ValidationError(
            f"ALVIN infers minority examples from training dynamics over >= 2 epochs, but the fit recorded "
            f"{correctness.shape[0]}; let the model train longer (raise max_epochs, or lower stop_loss_ratio "
            f"so the stopping rule fires later)"
        )
    forgotten = (correctness[:-1] & ~correctness[1:]).any(axis=0)
    never_correct = ~correctness.any(axis=0)
    return forgotten | never_correct


def training_dynamics(features, labels, *, model_factory=None, fit_report=None) -> InferredGroups:
    """The paper's rule over the correctness recorded by ``fit_report`` (or by a fresh fit).

    Confidence is the share of recorded epochs that agree with the verdict (incorrect
    for a minority example, correct for a majority one).
    """
    features, labels = check_inputs(features, labels)
    if fit_report is None:
        fit_report = check_factory(model_factory, NAME)().fit(features, labels)
    correctness = np.asarray(fit_report.correctness)
    if correctness.ndim != 2 or correctness.shape[1] != labels.size:
        raise ValidationError(
            f"fit_report.correctness must have one column per labeled example ({labels.size}); "
            f"got shape {correctness.shape}"
        )
    minority = infer_minority(correctness)
    agreeing = np.where(minority, ~correctness.astype(bool), correctness.astype(bool)).mean(axis=0)
    return from_flags(labels, minority, agreeing, NAME, {"epochs_recorded": int(correctness.shape[0])})
