import numpy as np
import pytest

from anchoral.errors import ValidationError
from anchoral.groups import infer_groups
from anchoral.models import LinearHead, MLPHead, make_model
from anchoral.models import robust
from anchoral.models.robust import (
    HEADS,
    balanced_subset,
    inverse_frequency_weights,
    last_layer_from_subsets,
    plain_model_params,
    upweight_minority,
)
from tests.groups.planted import planted_minority

HEAD_MODELS = [LinearHead, lambda n, **kw: MLPHead(n, max_epochs=20, hidden_dim=16, **kw)]


@pytest.fixture(scope="module")
def planted():
    return planted_minority(n=300, seed=5)


def test_group_weights_make_every_cell_weigh_the_same_and_average_one():
    np.testing.assert_allclose(inverse_frequency_weights(np.array([0, 0, 0, 3])), [2 / 3, 2 / 3, 2 / 3, 2])


def test_jtt_weights_give_the_minority_the_majoritys_total_weight():
    weights = upweight_minority(np.array([True, False, False, False]))
    np.testing.assert_allclose(weights, [2, 2 / 3, 2 / 3, 2 / 3])
    assert weights.mean() == pytest.approx(1.0)


def test_the_group_reweighted_mlp_trains_exactly_the_hand_weighted_loss(planted):
    features, labels, _, pool = planted
    robust_head = MLPHead(2, max_epochs=5, head="group-reweight", groups="clusters")
    report = robust_head.fit(features, labels, pool=pool)
    cells = infer_groups("clusters", features, labels, pool_features=pool).cells
    hand = MLPHead(2, max_epochs=5)
    hand_report = hand.fit(features, labels, sample_weight=inverse_frequency_weights(cells))
    assert report.first_loss == hand_report.first_loss and report.final_loss == hand_report.final_loss
    np.testing.assert_array_equal(robust_head.predict_proba(features), hand.predict_proba(features))
    assert report.extra["trained_head"] == "group-reweight" and report.extra["inferred_cells"] == cells.tolist()


def test_dfr_retrains_the_last_layer_on_exactly_balanced_subsets(planted, monkeypatch):
    features, labels, _, pool = planted
    seen = []
    original = robust.last_layer_from_subsets

    def recording(embeddings, subset_labels, subsets, n_classes):
        seen.extend(subsets)
        return original(embeddings, subset_labels, subsets, n_classes)

    monkeypatch.setattr(robust, "last_layer_from_subsets", recording)
    model = LinearHead(2, head="dfr", groups="clusters")
    report = model.fit(features, labels, pool=pool)
    cells = np.array(report.extra["inferred_cells"])
    smallest = np.bincount(cells)[np.unique(cells)].min()
    assert len(seen) == robust.DFR_DRAWS
    for subset in seen:
        assert np.unique(subset).size == subset.size
        np.testing.assert_array_equal(np.unique(cells[subset], return_counts=True)[1], smallest)


def test_a_single_subset_gives_the_logistic_regression_of_that_subset_alone():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    embeddings = rng.normal(size=(40, 3))
    labels = (embeddings[:, 0] > 0).astype(int)
    subset = np.arange(0, 40, 2)
    weights, biases = last_layer_from_subsets(embeddings, labels, [subset], 2)
    alone = LogisticRegression(max_iter=1000).fit(embeddings[subset], labels[subset])
    logits = embeddings @ weights.T + biases
    np.testing.assert_allclose(logits[:, 1] - logits[:, 0], alone.decision_function(embeddings), rtol=1e-6)


def test_balanced_subset_draws_the_smallest_cells_size_from_every_cell():
    cells = np.array([0] * 5 + [1] * 2 + [3] * 9)
    subset = balanced_subset(cells, np.random.default_rng(0))
    np.testing.assert_array_equal(np.bincount(cells[subset]), [2, 2, 0, 2])


@pytest.mark.parametrize("make", HEAD_MODELS)
@pytest.mark.parametrize("head", [h for h in HEADS if h not in ("plain", "class-balanced")])
def test_a_grouping_that_splits_no_class_falls_back_to_the_plain_loss_and_says_so(make, head):
    features = np.random.default_rng(1).normal(size=(40, 6)).astype(np.float32)
    features[:, 0] += 10  # one tight cluster: class x cluster = class
    labels = np.arange(40) % 2
    report = make(2, head=head, groups="clusters", n_clusters=1).fit(features, labels)
    assert "single group per class" in report.extra["fallback"]
    assert report.extra["trained_head"] == "plain"
    plain = make(2).fit(features, labels)
    assert report.final_loss == pytest.approx(plain.final_loss)


@pytest.mark.parametrize("make", HEAD_MODELS)
def test_auto_picks_the_candidate_with_the_best_cross_validated_worst_cell_accuracy(make, planted):
    features, labels, _, pool = planted
    report = make(2, head="auto", groups="clusters").fit(features, labels, pool=pool)
    scores = report.extra["selection_scores"]
    assert set(scores) == set(robust.CANDIDATES)
    best = max(scores.values())
    assert report.extra["trained_head"] == next(name for name in robust.CANDIDATES if scores[name] == best)


def test_the_robust_linear_head_beats_the_plain_one_on_the_planted_minority(planted):
    features, labels, minority, pool = planted
    test_features, test_labels, test_minority, _ = planted_minority(n=400, seed=6)

    def minority_accuracy(model):
        return (model.predict(test_features)[test_minority] == test_labels[test_minority]).mean()

    plain, reweighted = LinearHead(2), LinearHead(2, head="group-reweight")
    plain.fit(features, labels)
    reweighted.fit(features, labels, pool=pool)
    assert minority_accuracy(reweighted) > minority_accuracy(plain) + 0.2


def test_plain_model_params_drop_only_the_robust_options():
    assert plain_model_params({"head": "dfr", "groups": "out-of-fold", "n_folds": 3, "n_clusters": 4,
                               "max_epochs": 7}) == {"max_epochs": 7}


@pytest.mark.parametrize(("params", "message"), [
    ({"head": "magic"}, "unknown head 'magic'; expected one of: auto, auto-class, class-balanced, dfr"),
    ({"groups": "astrology"}, "unknown group inference method 'astrology'; expected one of: clusters"),
    ({"n_folds": 1}, "n_folds must be at least 2"),
    ({"n_clusters": 0}, "n_clusters must be a positive integer"),
])
@pytest.mark.parametrize("name", ["mlp", "linear"])
def test_bad_head_options_are_one_clear_line(name, params, message):
    with pytest.raises(ValidationError, match=message) as error:
        make_model(name, 2, **params)
    assert "\n" not in str(error.value)


def test_a_head_with_fewer_labels_per_class_than_folds_uses_fewer_folds_and_records_it():
    features = np.random.default_rng(0).normal(size=(12, 4)).astype(np.float32)
    labels = np.array([0] * 9 + [1] * 3)
    report = LinearHead(2, head="group-reweight", groups="out-of-fold").fit(features, labels)
    assert report.extra["group_diagnostics"]["n_folds"] == 3
    assert "the smallest class has 3 examples" in report.extra["group_diagnostics"]["fallback"]


def test_the_linear_head_records_two_epochs_even_when_it_converges_in_the_first():
    features = np.array([[1.0, 0.0], [-1.0, 0.0]] * 5, dtype=np.float32)
    labels = np.array([0, 1] * 5)
    report = LinearHead(2, iterations_per_epoch=100).fit(features, labels)
    assert report.n_recorded_epochs == 2 and report.stop_reason == "loss_ratio"
    assert infer_groups("dynamics", features, labels, fit_report=report).minority.sum() == 0
