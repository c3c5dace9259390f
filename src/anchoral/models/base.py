"""The model interface and the record of one fit (its training dynamics)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

STOP_LOSS_RATIO = "loss_ratio"
STOP_EPOCH_CAP = "epoch_cap"


@dataclass(frozen=True)
class FitReport:
    """What one ``Model.fit`` did.

    Attributes
    ----------
    epoch_losses : per-epoch mean training loss (the loss curve).
    first_loss : loss of the first minibatch of the fit (Tamkin §2's reference point).
    final_loss : loss of the last minibatch.
    correctness : bool array (n_epochs_recorded, n_train); row t says which training
        examples were predicted correctly after epoch t (ALVIN §3.1 training dynamics).
    stop_reason : ``"loss_ratio"`` if the validation-free rule fired (Tamkin §2: loss
        fell below ``stop_loss_ratio`` x the first loss), ``"epoch_cap"`` otherwise.
    epochs : epochs started (the last may be partial when the rule fired mid-epoch).
    steps : optimiser steps taken.
    seconds : wall time of the fit.
    """

    epoch_losses: tuple[float, ...]
    first_loss: float
    final_loss: float
    correctness: np.ndarray
    stop_reason: str
    epochs: int
    steps: int
    seconds: float
    extra: dict = field(default_factory=dict)

    @property
    def n_recorded_epochs(self) -> int:
        return int(self.correctness.shape[0])


@runtime_checkable
class Model(Protocol):
    """A trainable classifier with an explicit representation (DESIGN.md, Interfaces).

    ``embed`` is f_enc (the representation strategies such as ALVIN interpolate);
    ``proba_from_embedding`` is f_cls, so ``predict_proba(X) == proba_from_embedding(embed(X))``.
    Every ``fit`` starts again from the same initial weights (Tamkin et al. §2).
    """

    n_classes: int

    def fit(self, features: np.ndarray, labels: np.ndarray) -> FitReport: ...

    def predict_proba(self, features: np.ndarray) -> np.ndarray: ...

    def embed(self, features: np.ndarray) -> np.ndarray: ...

    def proba_from_embedding(self, embeddings: np.ndarray) -> np.ndarray: ...


def fit_model(model, inputs, labels, pool_features=None) -> FitReport:
    """``model.fit(inputs, labels)``, also handing over the pool's pretrained features when the
    model asks for them (``uses_pool``: a robust head whose groups come from clustering the
    pool). A deployment has its unlabeled pool, so this leaks nothing."""
    if getattr(model, "uses_pool", False) and pool_features is not None:
        return model.fit(inputs, labels, pool=pool_features)
    return model.fit(inputs, labels)
