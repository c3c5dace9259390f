"""Group-robust training of a head: options that use *inferred* groups, never true ones.

The options are model parameters (``head``, ``groups``, ``n_clusters``, ``n_folds``), so
every strategy can run under every head:

=====================  ==========================================================================
``head``               what the fit does
=====================  ==========================================================================
``plain``              ERM: mean cross-entropy (the papers' setting)
``class-balanced``     each class weighs the same (weights 1 / class count)
``group-reweight``     each inferred cell (class x group) weighs the same (1 / cell count)
``jtt``                the inferred minority is upweighted until it weighs as much as the rest
                       (JTT, Liu et al. 2021, with the upweight fixed by that rule, not tuned)
``dfr``                plain fit, then the last layer retrained on inferred-cell-balanced subsets
                       of the labeled set, averaged over draws (Deep Feature Reweighting,
                       Kirichenko et al. 2022, with inferred instead of true groups)
``auto``               the candidate above with the best cross-validated worst-*inferred*-cell
                       accuracy on the labeled set (a label-free rule; ``auto-class`` uses
                       worst-class accuracy instead, after Yang et al. 2023)
=====================  ==========================================================================

``groups`` names the inference (``anchoral.groups``). A grouping that splits no class
(every example in its class's single cell, or no minority) leaves nothing to balance:
the fit falls back to the plain loss and records why in ``FitReport.extra``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from anchoral.errors import ValidationError, unknown_name
from anchoral.groups import InferredGroups, check_method, infer_groups, method_parameters
from anchoral.groups.crossfit import stratified_folds
from anchoral.validation import check_features, check_labels, check_positive_int

ROBUST_PARAMS = ("head", "groups", "n_clusters", "n_folds")
"""Model parameters that choose a robust head; dropping them leaves the plain (ERM) head."""

WEIGHTED_HEADS = ("class-balanced", "group-reweight", "jtt")
CANDIDATES = ("plain", *WEIGHTED_HEADS, "dfr")
HEADS = (*CANDIDATES, "auto", "auto-class")
DFR_DRAWS = 10
SELECTION_FOLDS = 3


def plain_model_params(params: dict) -> dict:
    """``params`` without the robust-head options: the same model trained by plain ERM."""
    return {key: value for key, value in params.items() if key not in ROBUST_PARAMS}


def check_head(head: str) -> str:
    if head not in HEADS:
        raise unknown_name("head", head, HEADS)
    return head


def check_groups(groups: str) -> str:
    return check_method(groups)


def inverse_frequency_weights(keys: np.ndarray) -> np.ndarray:
    """1 / (count of the example's key), normalised to mean 1: every key weighs the same in total."""
    _, position, counts = np.unique(keys, return_inverse=True, return_counts=True)
    weights = 1.0 / counts[position]
    return weights * (weights.size / weights.sum())


def upweight_minority(minority: np.ndarray) -> np.ndarray:
    """JTT's weights: minority examples get n_majority / n_minority, so both sets weigh the same."""
    minority = np.asarray(minority, dtype=bool)
    weights = np.ones(minority.size)
    weights[minority] = (~minority).sum() / minority.sum()
    return weights * (weights.size / weights.sum())


def nothing_to_balance(labels: np.ndarray, inferred: InferredGroups) -> str | None:
    """Why an inferred grouping cannot drive a robust head, or None if it can."""
    if inferred.n_cells <= np.unique(labels).size:
        return f"{inferred.method} inferred a single group per class"
    if not inferred.minority.any():
        return f"{inferred.method} inferred no minority example"
    if inferred.minority.all():
        return f"{inferred.method} inferred every example as minority"
    return None


def head_weights(head: str, labels: np.ndarray, inferred: InferredGroups) -> np.ndarray:
    """Per-example loss weights of a weighted head (mean 1)."""
    if head == "class-balanced":
        return inverse_frequency_weights(labels)
    if head == "group-reweight":
        return inverse_frequency_weights(inferred.cells)
    if head == "jtt":
        return upweight_minority(inferred.minority)
    raise ValidationError(f"head {head!r} is not a weighted head; expected one of {', '.join(WEIGHTED_HEADS)}")


def balanced_subset(cells: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Positions of a subset with the same number of examples (the smallest cell's size) from every cell."""
    names, counts = np.unique(cells, return_counts=True)
    size = int(counts.min())
    parts = [rng.choice(np.flatnonzero(cells == name), size=size, replace=False) for name in names]
    return np.sort(np.concatenate(parts))


def last_layer_from_subsets(embeddings: np.ndarray, labels: np.ndarray, subsets: list[np.ndarray],
                            n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Softmax-layer weights (n_classes, d) and biases fitted by logistic regression on each subset
    of the representations, averaged over the subsets (DFR §5). A subset missing a class
    contributes nothing for that class's column beyond the regulariser's pull to zero."""
    from sklearn.linear_model import LogisticRegression

    weights = np.zeros((n_classes, embeddings.shape[1]))
    biases = np.zeros(n_classes)
    for subset in subsets:
        present = np.unique(labels[subset])
        if present.size < 2:
            raise ValidationError(f"a balanced subset holds only class {present.tolist()}; DFR needs two or more")
        regression = LogisticRegression(max_iter=1000).fit(embeddings[subset], labels[subset])
        coef, intercept = regression.coef_, regression.intercept_
        if present.size == 2 and coef.shape[0] == 1:  # sklearn's binary form: one logit difference
            coef = np.vstack([-coef / 2, coef / 2])
            intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
        weights[present] += coef
        biases[present] += intercept
    return weights / len(subsets), biases / len(subsets)


class RobustFit:
    """One robust fit of a head ``model`` that offers ``fit_weighted(features, labels, weights)``,
    ``embed``, ``set_last_layer(weights, biases)`` and ``plain_copy()`` (MLPHead does)."""

    def __init__(self, model, head: str, groups: str, group_params: dict, rng: np.random.Generator):
        self.model = model
        self.head = check_head(head)
        self.groups = check_groups(groups)
        self.group_params = group_params
        self.rng = rng

    def infer(self, features, labels, pool) -> InferredGroups:
        params = {key: value for key, value in {**self.group_params, "strict": False}.items()
                  if key in method_parameters(self.groups)}
        return infer_groups(self.groups, features, labels, model_factory=self.model.plain_copy,
                            pool_features=pool, rng=self.rng, **params)

    def fit(self, features: np.ndarray, labels: np.ndarray, pool=None):
        """Infer the groups (unless the head needs none), train the head; ``FitReport.extra`` says
        what was inferred, which head was trained and any fallback."""
        if self.head == "class-balanced":
            report = self.train("class-balanced", features, labels, None)
            return replace(report, extra={**report.extra, "head": self.head, "trained_head": self.head})
        inferred = self.infer(features, labels, pool)
        extra = {"head": self.head, "groups": self.groups, "inferred_minority": inferred.minority.tolist(),
                 "inferred_cells": inferred.cells.tolist(), "group_diagnostics": inferred.diagnostics}
        head, fallback = trainable(self.head, labels, inferred)
        if fallback:
            extra["fallback"] = fallback
        elif head in ("auto", "auto-class"):
            head, extra["selection_scores"] = self.choose(features, labels, inferred)
        extra["trained_head"] = head
        report = self.train(head, features, labels, inferred)
        return replace(report, extra={**report.extra, **extra})

    def train(self, head: str, features, labels, inferred: InferredGroups | None):
        if head == "plain":
            return self.model.fit_weighted(features, labels, None)
        if head in WEIGHTED_HEADS:
            return self.model.fit_weighted(features, labels, head_weights(head, labels, inferred))
        report = self.model.fit_weighted(features, labels, None)
        subsets = [balanced_subset(inferred.cells, self.rng) for _ in range(DFR_DRAWS)]
        weights, biases = last_layer_from_subsets(self.model.embed(features), labels, subsets, self.model.n_classes)
        self.model.set_last_layer(weights, biases)
        return replace(report, extra={**report.extra, "dfr_subset_size": int(subsets[0].size)})

    def choose(self, features, labels, inferred: InferredGroups) -> tuple[str, dict]:
        """The candidate head with the best cross-validated worst-cell (``auto``) or worst-class
        (``auto-class``) accuracy on the labeled set, the groups inferred once on all of it;
        ties go to the earlier candidate in ``CANDIDATES``."""
        smallest = int(np.bincount(labels)[np.unique(labels)].min())
        if smallest < 2:
            return "plain", {"fallback": "a class has a single labeled example: no cross-validation, plain head"}
        folds = stratified_folds(labels, min(SELECTION_FOLDS, smallest), self.rng)
        keys = labels if self.head == "auto-class" else inferred.cells
        scores = {}
        for candidate in CANDIDATES:
            correct = np.zeros(labels.size, dtype=bool)
            for fold in np.unique(folds):
                train = folds != fold
                part = _restrict(inferred, train)
                trial = RobustFit(self.model.plain_copy(), candidate, self.groups, self.group_params, self.rng)
                trial.train(trainable(candidate, labels[train], part)[0], features[train], labels[train], part)
                correct[~train] = trial.model.predict(features[~train]) == labels[~train]
            scores[candidate] = float(min(correct[keys == key].mean() for key in np.unique(keys)))
        best = max(CANDIDATES, key=lambda name: (scores[name], -CANDIDATES.index(name)))
        return best, scores


def trainable(head: str, labels: np.ndarray, inferred: InferredGroups) -> tuple[str, str | None]:
    """``head``, or ``plain`` with the reason when the grouping leaves nothing to balance."""
    if head in ("plain", "class-balanced"):
        return head, None
    reason = nothing_to_balance(labels, inferred)
    if reason is None:
        return head, None
    return "plain", f"{reason}: trained {head!r} as the plain loss"


class RobustHeadMixin:
    """The robust-training options of a head (``head``, ``groups``, ``n_clusters``, ``n_folds``) and
    the ``fit`` that dispatches on them. The head class provides ``fit_weighted(features, labels,
    sample_weight)`` (its plain fit), ``plain_copy()``, ``embed``, ``predict`` and ``set_last_layer``."""

    def _set_robust_options(self, head: str, groups: str, n_clusters: int, n_folds: int) -> None:
        self.head = check_head(head)
        self.groups = check_groups(groups)
        self.n_clusters = check_positive_int(n_clusters, "n_clusters")
        self.n_folds = check_positive_int(n_folds, "n_folds")
        if self.n_folds < 2:
            raise ValidationError(f"n_folds must be at least 2; got {n_folds!r}")

    @property
    def uses_pool(self) -> bool:
        """Whether fit wants the pool's pretrained features (a robust head over clusters of the pool)."""
        return self.head not in ("plain", "class-balanced") and self.groups == "clusters"

    def fit(self, features, labels, sample_weight=None, *, pool=None):
        """Train on (features, labels). ``sample_weight`` (optional): per-example loss weights,
        rescaled to mean 1; given weights train exactly that loss, whatever ``head`` says.

        With a robust ``head`` the fit first infers groups on the labeled set (``pool``, the
        pretrained features of the whole pool, feeds ``groups="clusters"``; without it the
        labeled features are clustered), then trains as the head says; ``FitReport.extra``
        records the inference, the head trained and any fallback.
        """
        if self.head == "plain" or sample_weight is not None:
            return self.fit_weighted(features, labels, sample_weight)
        features = check_features(features, "features")
        labels = check_labels(labels, features.shape[0], "labels")
        group_params = {"n_clusters": self.n_clusters, "n_folds": self.n_folds}
        return RobustFit(self, self.head, self.groups, group_params, np.random.default_rng(self.seed)).fit(
            features, labels, pool)


def _restrict(inferred: InferredGroups, rows: np.ndarray) -> InferredGroups:
    return replace(inferred, cells=inferred.cells[rows], minority=inferred.minority[rows],
                   confidence=inferred.confidence[rows], uncertain=inferred.uncertain[rows])
