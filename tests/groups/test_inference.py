import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from anchoral.errors import ValidationError
from anchoral.groups import GROUP_METHODS, infer_groups
from anchoral.groups.base import smaller_cells_are_minority
from anchoral.groups.crossfit import stratified_folds
from anchoral.models import MLPHead
from tests.groups.planted import planted_minority

RECALL_BOUND = 0.6  # the training dynamics of the default MLP head recall 0.45 of this planted minority


def recall_precision(inferred: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    hits = (inferred & truth).sum()
    return hits / truth.sum(), hits / max(inferred.sum(), 1)


@pytest.fixture(scope="module")
def planted():
    features, labels, minority, pool = planted_minority()
    report = MLPHead(2).fit(features, labels)
    return features, labels, minority, pool, report


def test_the_training_dynamics_rule_with_the_default_mlp_head_fails_the_recall_bound(planted):
    features, labels, minority, _, report = planted
    inferred = infer_groups("dynamics", features, labels, fit_report=report)
    assert recall_precision(inferred.minority, minority)[0] < RECALL_BOUND


@pytest.mark.parametrize("method", ["out-of-fold", "early-stopped", "clusters"])
def test_each_label_free_method_recovers_a_planted_minority(planted, method):
    features, labels, minority, pool, report = planted
    inferred = infer_groups(method, features, labels, model_factory=lambda: MLPHead(2), pool_features=pool,
                            fit_report=report, rng=np.random.default_rng(0))
    recall, precision = recall_precision(inferred.minority, minority)
    assert recall >= RECALL_BOUND
    assert precision >= 0.5
    assert inferred.cells.shape == labels.shape and inferred.confidence.shape == labels.shape
    assert ((inferred.confidence >= 0) & (inferred.confidence <= 1)).all()
    assert inferred.method == method


def test_out_of_fold_errors_come_from_models_that_never_saw_the_example(planted):
    features, labels, minority, _, _ = planted
    seen = []

    class Recording(LogisticRegression):
        def fit(self, x, y):
            seen.append({tuple(row) for row in np.round(x, 5)})
            return super().fit(x, y)

    infer_groups("out-of-fold", features, labels, model_factory=lambda: Recording(max_iter=500), n_folds=4,
                 rng=np.random.default_rng(1))
    assert len(seen) == 4
    rows = [tuple(row) for row in np.round(features, 5)]
    for row in rows:  # each example was held out of exactly one of the four fits
        assert sum(row not in fitted for fitted in seen) == 1


def test_clusters_use_the_pool_when_given_and_mark_low_margins_uncertain(planted):
    features, labels, _, pool, _ = planted
    with_pool = infer_groups("clusters", features, labels, pool_features=pool, min_margin=0.5)
    assert with_pool.diagnostics["clustered"] == "pool"
    assert with_pool.uncertain.sum() == (with_pool.confidence < 0.5).sum() > 0
    alone = infer_groups("clusters", features, labels)
    assert alone.diagnostics["clustered"] == "labeled"


def test_cells_split_each_class_and_the_smaller_cells_are_minority():
    labels = np.array([0, 0, 0, 1, 1, 1, 1])
    cells = np.array([0, 0, 1, 2, 3, 3, 3])
    np.testing.assert_array_equal(smaller_cells_are_minority(labels, cells), [0, 0, 1, 1, 0, 0, 0])


def test_stratified_folds_keep_every_class_in_every_fold():
    labels = np.array([0] * 7 + [1] * 5)
    folds = stratified_folds(labels, 3, np.random.default_rng(0))
    for fold in range(3):
        assert set(labels[folds == fold]) == {0, 1}


def test_early_stopped_records_a_fallback_when_the_fit_was_shorter(planted):
    features, labels, _, _, report = planted
    inferred = infer_groups("early-stopped", features, labels, fit_report=report, epochs=10_000)
    assert "fallback" in inferred.diagnostics and inferred.diagnostics["epochs"] == report.n_recorded_epochs


@pytest.mark.parametrize(("call", "message"), [
    (lambda x, y: infer_groups("tarot", x, y), "expected one of: clusters, dynamics, early-stopped, out-of-fold"),
    (lambda x, y: infer_groups("out-of-fold", x, y, model_factory=LogisticRegression, n_folds=1000),
     "larger than the smallest class"),
    (lambda x, y: infer_groups("out-of-fold", x, y), "pass model_factory"),
    (lambda x, y: infer_groups("clusters", x, y, n_clusters=0), "n_clusters must be a positive integer"),
    (lambda x, y: infer_groups("clusters", x, y, n_clusters=10_000), "larger than the"),
    (lambda x, y: infer_groups("clusters", x, y, n_folds=3), "has no parameter 'n_folds'"),
    (lambda x, y: infer_groups("clusters", x, y, pool_features=np.ones((5, 3))), "columns"),
])
def test_bad_input_is_one_clear_line(planted, call, message):
    features, labels, *_ = planted
    with pytest.raises(ValidationError, match=message) as error:
        call(features, labels)
    assert "\n" not in str(error.value)


def test_every_registered_method_is_covered():
    assert set(GROUP_METHODS) == {"dynamics", "out-of-fold", "early-stopped", "clusters"}


def test_out_of_fold_in_the_loop_shrinks_the_folds_or_infers_nothing_and_records_why(planted):
    features, labels, *_ = planted
    few = np.concatenate([np.flatnonzero(labels == 0)[:3], np.flatnonzero(labels == 1)[:10]])
    shrunk = infer_groups("out-of-fold", features[few], labels[few], model_factory=lambda: MLPHead(2, max_epochs=5),
                          strict=False)
    assert shrunk.diagnostics["n_folds"] == 3 and "3 folds" in shrunk.diagnostics["fallback"]
    single = np.concatenate([np.flatnonzero(labels == 0)[:1], np.flatnonzero(labels == 1)[:10]])
    none = infer_groups("out-of-fold", features[single], labels[single], model_factory=LogisticRegression,
                        strict=False)
    assert not none.minority.any() and "no cross-fitting" in none.diagnostics["fallback"]
