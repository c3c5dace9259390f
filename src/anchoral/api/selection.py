"""One selection from what the caller has: ``next_batch`` (stateless) and the helpers the
``ActiveLearner`` shares with it (which strategy, which model, asking the strategy).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from anchoral.api.classifiers import MissingRepresentation, SklearnModel, check_classifier, is_sklearn_classifier
from anchoral.errors import ValidationError
from anchoral.models import make_model, with_shared_state_cache
from anchoral.models.base import Model, fit_model
from anchoral.strategies import ALVIN, BertKM, MinoritySeeking, RoundState, Selection, Strategy, make_strategy
from anchoral.validation import check_features, check_positive_int


def resolve_strategy(strategy, params: Mapping | None = None) -> Strategy:
    """A strategy name (with its ``params``) or a Strategy instance, as a Strategy."""
    if isinstance(strategy, Strategy):
        if params:
            raise ValidationError("strategy_params apply to a strategy given by name; this strategy is already built")
        return strategy
    if not isinstance(strategy, str):
        raise ValidationError(f"strategy must be a strategy name (see `anchoral strategies`) or a Strategy; "
                              f"got {type(strategy).__name__}")
    return make_strategy(strategy, **dict(params or {}))


def check_model_argument(model, model_params: Mapping | None, embed) -> None:
    """Fail now, before any work, for a model that can never be used."""
    if isinstance(model, str):
        make_model(model, 2, seed=0, **dict(model_params or {}))  # validates the name and parameters
    elif model_params:
        raise ValidationError("model_params apply to a model given by name; pass parameters to your model's constructor")
    elif not isinstance(model, Model):
        check_classifier(model)
    if embed is not None and not (is_sklearn_classifier(model) and not isinstance(model, str)):
        raise ValidationError("embed= is for a scikit-learn classifier; an anchoral model has its own embed()")


def build_model(model, n_classes: int, *, seed: int, model_params: Mapping | None = None, embed=None,
                input_kind: str = "features"):
    """An anchoral Model for ``n_classes`` classes from a model name, a Model or a scikit-learn classifier."""
    if isinstance(model, str):
        return make_model(model, n_classes, seed=seed, **with_shared_state_cache(model, model_params or {}))
    if isinstance(model, Model):
        if model.n_classes != n_classes:
            raise ValidationError(f"the model was built for {model.n_classes} classes; the labels have {n_classes}")
        return model
    return SklearnModel(model, n_classes, embed=embed, input_kind=input_kind)


def needs_pretrained_features(strategy: Strategy) -> bool:
    """Strategies that read the pool's pretrained features (``RoundState.features``) themselves."""
    return isinstance(strategy, (BertKM, MinoritySeeking)) or (isinstance(strategy, ALVIN) and strategy.minority == "clusters")


def select(strategy: Strategy, state: RoundState, n: int, rng: np.random.Generator) -> Selection:
    """``strategy.select``, with what a model cannot give said once, naming the strategy."""
    if isinstance(strategy, ALVIN) and strategy.minority in ("dynamics", "early-stopped"):
        recorded = 0 if state.fit_report is None else state.fit_report.n_recorded_epochs
        if recorded < 2:
            source = "no fit (pass model=)" if state.fit_report is None else (
                f"one recorded epoch ({state.fit_report.extra.get('classifier', type(state.model).__name__)} has no "
                "max_iter to replay)")
            raise ValidationError(
                f"strategy {strategy.name!r} infers minority examples from training dynamics (correctness after each "
                f"epoch, at least two), but there is {source}; pass strategy_params={{'minority': 'out-of-fold'}} "
                "(or 'clusters') or a model that trains in epochs"
            )
    try:
        return strategy.select(state, n, rng)
    except MissingRepresentation as exc:
        raise ValidationError(f"strategy {strategy.name!r} needs {exc}") from None


class GivenPredictions:
    """A 'model' that is only what the caller handed over: the pool's probabilities and/or
    features (the features serve as the representation). Nothing is fitted."""

    input_kind = "features"

    def __init__(self, probabilities: np.ndarray | None, features: np.ndarray | None, n_classes: int):
        self.probabilities = probabilities
        self.features = features
        self.n_classes = n_classes

    def fit(self, X, y):
        raise ValidationError("given predictions cannot be refitted; pass model= to have one fitted")

    def predict_proba(self, X) -> np.ndarray:
        if self.probabilities is None:
            raise MissingRepresentation("the pool's class probabilities: pass probabilities= or model=")
        return self.probabilities

    def embed(self, X) -> np.ndarray:
        if self.features is None:
            raise MissingRepresentation(
                "a representation of each pool example: pass features= (used as the representation) or model= with features="
            )
        return self.features

    def proba_from_embedding(self, Z) -> np.ndarray:
        raise MissingRepresentation("a classifier over representations (f_cls): pass model= and features=")


def check_probabilities(probabilities, name: str = "probabilities") -> np.ndarray:
    array = check_features(probabilities, name)
    if array.shape[1] < 2:
        raise ValidationError(f"{name} must have one column per class (at least 2); got shape {array.shape}")
    if (array < 0).any() or not np.allclose(array.sum(axis=1), 1.0, atol=1e-3):
        raise ValidationError(f"{name} must be non-negative with rows summing to 1 (class probabilities)")
    return array


def check_new_indices(indices, pool_size: int, name: str = "indices") -> np.ndarray:
    """``indices`` as distinct int64 pool positions in [0, pool_size)."""
    array = np.asarray(indices)
    if array.ndim == 0:
        array = array.reshape(1)
    if array.ndim != 1:
        raise ValidationError(f"{name} must be 1-D; got shape {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValidationError(f"{name} must be integer pool positions; got dtype {array.dtype}")
    array = array.astype(np.int64, copy=False)
    if array.size and (array.min() < 0 or array.max() >= pool_size):
        bad = array[(array < 0) | (array >= pool_size)][0]
        raise ValidationError(f"{name} must lie in [0, {pool_size}) (the pool has {pool_size} examples); got {bad}")
    values, counts = np.unique(array, return_counts=True)
    if (counts > 1).any():
        raise ValidationError(f"{name} repeats {int(values[counts > 1][0])}; each example is labeled once")
    return array


def encode_labels(labels, n: int, *, class_count: int | None) -> tuple[np.ndarray, list]:
    """Class ids for ``labels`` and the label values in class-id order.

    Integer labels are class ids already (``class_count`` columns when known); any other
    labels are numbered in sorted order, as scikit-learn's ``classes_``."""
    values = list(labels.tolist() if isinstance(labels, np.ndarray) else labels)
    if len(values) != n:
        raise ValidationError(f"labels has {len(values)} entries; expected {n} (one per labeled index)")
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
        ids = np.asarray(values, dtype=np.int64)
        count = class_count if class_count is not None else (int(ids.max()) + 1 if ids.size else 0)
        if ids.size and (ids.min() < 0 or ids.max() >= count):
            raise ValidationError(f"labels must be class ids in [0, {count}) (the columns of probabilities); "
                                  f"got {int(ids[(ids < 0) | (ids >= count)][0])}")
        return ids, list(range(count))
    if class_count is not None:
        raise ValidationError("with probabilities=, labels must be integer class ids (the columns of probabilities)")
    classes = sorted(set(values), key=str)
    position = {value: index for index, value in enumerate(classes)}
    return np.asarray([position[v] for v in values], dtype=np.int64), classes


def next_batch(strategy, n: int, *, labeled_indices, labels, features=None, probabilities=None, model=None,
               embed=None, seed: int = 0, strategy_params: Mapping | None = None,
               model_params: Mapping | None = None) -> Selection:
    """The next ``n`` pool examples to label, for a loop of your own.

    Parameters
    ----------
    strategy : a strategy name (``anchoral strategies``) or a Strategy.
    n : batch size (at most the number of unlabeled examples).
    labeled_indices, labels : the pool positions labeled so far and their labels (class
        ids 0..C-1 when ``probabilities`` are given; otherwise any values, numbered in sorted order).
    features : (N, d) pool features (e.g. a pretrained encoder's); the representation
        strategies use when no ``model`` is given.
    probabilities : (N, C) the pool's class probabilities from your model, if you have them.
    model : a model name, an anchoral Model or a scikit-learn classifier; when given it is
        fitted on ``features[labeled_indices]`` (so ``features`` are needed) and supplies
        the probabilities, the representation and ALVIN's training dynamics.
    embed : with a scikit-learn ``model``, a callable giving the representation.
    seed : the selection's random seed.

    Returns a ``Selection``: ``indices`` (pool positions, best first), ``scores`` (aligned,
    or None for strategies that do not score) and ``diagnostics``.
    """
    chosen = resolve_strategy(strategy, strategy_params)
    if features is None and probabilities is None:
        raise ValidationError("pass the pool's features= or probabilities= (or both)")
    features = None if features is None else check_features(features, "features")
    probabilities = None if probabilities is None else check_probabilities(probabilities)
    if features is not None and probabilities is not None and features.shape[0] != probabilities.shape[0]:
        raise ValidationError(f"features has {features.shape[0]} rows and probabilities {probabilities.shape[0]}; "
                              "expected one row per pool example in both")
    pool_size = (features if features is not None else probabilities).shape[0]
    n = check_positive_int(n, "n")
    positions = check_new_indices(labeled_indices, pool_size, "labeled_indices")
    class_ids, classes = encode_labels(labels, positions.size, class_count=None if probabilities is None else probabilities.shape[1])
    n_classes = max(len(classes), 2)
    if model is not None:
        if probabilities is not None:
            raise ValidationError("pass probabilities= or model=, not both: the fitted model gives the probabilities")
        if features is None:
            raise ValidationError("model= is fitted on features[labeled_indices]; pass features=")
        check_model_argument(model, model_params, embed)
        fitted = build_model(model, n_classes, seed=seed, model_params=model_params, embed=embed)
        fit_report = fit_model(fitted, features[positions], class_ids, features)
    else:
        if embed is not None:
            raise ValidationError("embed= goes with a scikit-learn model=; without a model, features= is the representation")
        fitted, fit_report = GivenPredictions(probabilities, features, n_classes), None
    if features is None and needs_pretrained_features(chosen):
        raise ValidationError(f"strategy {chosen.name!r} needs the pool's pretrained features; pass features=")
    state = RoundState(
        features=features if features is not None else np.zeros((pool_size, 0), dtype=np.float32),
        labeled_indices=positions, labeled_labels=class_ids, model=fitted, fit_report=fit_report, n_classes=n_classes,
    )
    return select(chosen, state, n, np.random.default_rng(seed))
