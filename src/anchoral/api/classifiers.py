"""Any scikit-learn classifier with ``predict_proba`` as an anchoral ``Model``.

What a strategy needs from a model (``anchoral.strategies.RoundState``) and what a
scikit-learn classifier gives:

- class probabilities (uncertainty sampling, and every strategy that ranks by them):
  ``predict_proba``, with its columns placed at the class ids it saw (a class missing
  from the labeled set gets probability 0);
- a representation f_enc of each example (ALVIN, BADGE, CAL, Core-set, ALFA-Mix): the
  classifier's input features, or ``embed(X)`` when given. A classifier that reads texts
  (a TF-IDF pipeline) has no representation unless ``embed`` gives one;
- f_cls, probabilities from a representation (ALFA-Mix): ``predict_proba`` itself when the
  representation is the input features; unknown for ``embed``'s representation;
- per-epoch correctness of the labeled examples (ALVIN's training dynamics, §2.2): the
  classifier is fitted as configured, and its optimisation is replayed at increasing
  iteration budgets when it has an integer ``max_iter`` (1, 2, 4, ... up to ``max_iter``,
  at most ``checkpoints`` fits in all; for a deterministic solver such as lbfgs these are
  the iterates of the real fit); the correctness after each budget is one row. A
  classifier without ``max_iter`` (a random forest, naive Bayes) records one row only,
  and ALVIN's default inference says so: choose ``minority="out-of-fold"`` or
  ``"clusters"`` for it.
"""

from __future__ import annotations

import time
import warnings
from typing import Callable

import numpy as np

from anchoral.errors import ValidationError
from anchoral.models.base import FitReport
from anchoral.validation import check_features

STOP_CLASSIFIER = "classifier"
"""FitReport.stop_reason of a scikit-learn fit: the classifier's own stopping rule ended it."""


class MissingRepresentation(ValidationError):
    """A strategy asked the model for something it cannot give (the message says what, and how to give it)."""


def is_sklearn_classifier(model) -> bool:
    """Looks like a scikit-learn estimator: ``fit`` and ``get_params``, and no anchoral ``embed``."""
    return hasattr(model, "fit") and hasattr(model, "get_params") and not hasattr(model, "proba_from_embedding")


def check_classifier(classifier) -> None:
    if not hasattr(classifier, "fit") or not hasattr(classifier, "get_params"):
        raise ValidationError(
            f"model must be a model name, an anchoral Model or a scikit-learn classifier; got {type(classifier).__name__}"
        )
    if not hasattr(classifier, "predict_proba"):
        raise ValidationError(
            f"the classifier {type(classifier).__name__} has no predict_proba; active learning needs class "
            "probabilities (wrap it in sklearn.calibration.CalibratedClassifierCV, or choose another classifier)"
        )


class SklearnModel:
    """An anchoral ``Model`` over a scikit-learn classifier (see the module docstring).

    Parameters
    ----------
    classifier : an unfitted scikit-learn classifier with ``fit`` and ``predict_proba``;
        every ``fit`` trains a fresh ``sklearn.base.clone`` of it.
    n_classes : number of classes; labels are class ids 0 .. n_classes - 1.
    embed : callable X -> (n, d) array, optional
        The representation strategies use; default: the input features themselves.
    input_kind : "features" (default) or "texts": what the classifier reads.
    checkpoints : int, default 8
        Most fits a round makes to record training dynamics (the last is the real fit).

    Attributes
    ----------
    estimator_ : the classifier fitted by the last ``fit``.
    """

    def __init__(self, classifier, n_classes: int, *, embed: Callable | None = None, input_kind: str = "features",
                 checkpoints: int = 8):
        check_classifier(classifier)
        if embed is not None and not callable(embed):
            raise ValidationError(f"embed must be a callable X -> (n, d) array; got {type(embed).__name__}")
        if input_kind not in ("features", "texts"):
            raise ValidationError(f"input_kind must be 'features' or 'texts'; got {input_kind!r}")
        if isinstance(checkpoints, bool) or not isinstance(checkpoints, int) or checkpoints < 1:
            raise ValidationError(f"checkpoints must be a positive integer; got {checkpoints!r}")
        self.classifier = classifier
        self.n_classes = int(n_classes)
        self.embed_function = embed
        self.input_kind = input_kind
        self.checkpoints = checkpoints
        self.estimator_ = None

    def plain_copy(self) -> SklearnModel:
        """The same unfitted adapter (group inference that refits uses it)."""
        return SklearnModel(self.classifier, self.n_classes, embed=self.embed_function, input_kind=self.input_kind,
                            checkpoints=self.checkpoints)

    def _inputs(self, X):
        return list(X) if self.input_kind == "texts" else check_features(X, "X")

    def _fit_clone(self, X, y, **params):
        from sklearn.base import clone

        estimator = clone(self.classifier)
        if params:
            estimator.set_params(**params)
        try:
            return estimator.fit(X, y)
        except ValueError as exc:
            raise ValidationError(f"{type(self.classifier).__name__} could not be fitted: {exc}") from exc

    def _iteration_parameter(self) -> str:
        """``max_iter``, or ``<last step>__max_iter`` for a Pipeline (its classifier is the last step)."""
        steps = getattr(self.classifier, "steps", None)
        return f"{steps[-1][0]}__max_iter" if steps else "max_iter"

    def _iteration_budgets(self) -> list[int]:
        max_iter = self.classifier.get_params().get(self._iteration_parameter())
        if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 2 or self.checkpoints < 2:
            return []
        budgets = np.unique(np.geomspace(1, int(max_iter), self.checkpoints).round().astype(int))
        return [int(b) for b in budgets if b < max_iter]

    def fit(self, X, y) -> FitReport:
        from sklearn.exceptions import ConvergenceWarning

        started = time.perf_counter()
        X = self._inputs(X)
        y = np.asarray(y, dtype=np.int64)
        rows, losses = [], []
        for budget in self._iteration_budgets():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                replay = self._fit_clone(X, y, **{self._iteration_parameter(): budget})
            rows.append(self._correct(replay, X, y))
            losses.append(self._loss(replay, X, y))
        self.estimator_ = self._fit_clone(X, y)
        rows.append(self._correct(self.estimator_, X, y))
        losses.append(self._loss(self.estimator_, X, y))
        n_iter = getattr(self.estimator_, "n_iter_", None)
        steps = int(np.max(n_iter)) if n_iter is not None else 0
        return FitReport(
            epoch_losses=tuple(losses), first_loss=losses[0], final_loss=losses[-1],
            correctness=np.stack(rows), stop_reason=STOP_CLASSIFIER, epochs=len(rows), steps=steps,
            seconds=time.perf_counter() - started,
            extra={"classifier": type(self.classifier).__name__, "dynamics": "max_iter replay" if len(rows) > 1 else "final fit only"},
        )

    def _aligned(self, estimator, X) -> np.ndarray:
        probabilities = np.asarray(estimator.predict_proba(X), dtype=np.float64)
        columns = np.asarray(estimator.classes_, dtype=np.int64)
        full = np.zeros((probabilities.shape[0], self.n_classes), dtype=np.float64)
        full[:, columns] = probabilities
        return full

    def _correct(self, estimator, X, y) -> np.ndarray:
        return self._aligned(estimator, X).argmax(axis=1) == y

    def _loss(self, estimator, X, y) -> float:
        probabilities = self._aligned(estimator, X)
        return float(-np.log(np.clip(probabilities[np.arange(y.size), y], 1e-12, 1.0)).mean())

    def _fitted(self):
        if self.estimator_ is None:
            raise ValidationError("the classifier is not fitted yet; call fit first")
        return self.estimator_

    def predict_proba(self, X) -> np.ndarray:
        return self._aligned(self._fitted(), self._inputs(X))

    def embed(self, X) -> np.ndarray:
        if self.embed_function is not None:
            Z = check_features(self.embed_function(X), "embed(X)")
            if Z.shape[0] != len(X):
                raise ValidationError(f"embed(X) returned {Z.shape[0]} rows for {len(X)} examples; expected one per example")
            return Z
        if self.input_kind == "texts":
            raise MissingRepresentation(
                f"a representation of each example, and {type(self.classifier).__name__} reads texts: "
                "pass embed= (a callable texts -> (n, d) array)"
            )
        return check_features(X, "X")

    def proba_from_embedding(self, Z) -> np.ndarray:
        if self.embed_function is not None or self.input_kind == "texts":
            raise MissingRepresentation(
                f"class probabilities from a representation (f_cls), and {type(self.classifier).__name__} "
                "reads its inputs, not embed()'s representation: use the input features as the representation "
                "(no embed=) or a model with proba_from_embedding"
            )
        return self.predict_proba(Z)

    def __repr__(self) -> str:
        return f"SklearnModel({self.classifier!r}, n_classes={self.n_classes})"
