import numpy as np
import pytest

from anchoral.errors import ValidationError
from anchoral.models import STOP_EPOCH_CAP, STOP_LOSS_RATIO, MLPHead
from tests.conftest import make_blobs


def test_fit_records_per_epoch_correctness_for_every_training_example(blobs):
    features, labels = blobs
    report = MLPHead(2, max_epochs=5, stop_loss_ratio=0).fit(features, labels)
    assert report.correctness.shape == (5, labels.size)
    assert report.correctness.dtype == bool
    assert len(report.epoch_losses) == 5
    assert report.stop_reason == STOP_EPOCH_CAP


def test_loss_falls_and_the_loss_ratio_rule_stops_training(blobs):
    features, labels = blobs
    report = MLPHead(2, max_epochs=500).fit(features, labels)
    assert report.stop_reason == STOP_LOSS_RATIO
    assert report.final_loss < 1e-3 * report.first_loss
    assert report.epoch_losses[-1] < report.epoch_losses[0]
    assert report.epochs < 500


def test_epoch_cap_ends_training_when_the_rule_cannot_fire():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(40, 4)).astype(np.float32)
    labels = rng.integers(0, 2, size=40)  # random labels: loss will not fall 1000-fold in 3 epochs
    report = MLPHead(2, max_epochs=3).fit(features, labels)
    assert report.stop_reason == STOP_EPOCH_CAP
    assert report.epochs == 3


def test_every_fit_restarts_from_the_same_initial_weights(blobs):
    features, labels = blobs
    model = MLPHead(2, seed=3, max_epochs=5, stop_loss_ratio=0)
    model.fit(features[:20], labels[:20])
    first = model.predict_proba(features)
    model.fit(features[20:], labels[20:])  # a different fit in between
    model.fit(features[:20], labels[:20])
    np.testing.assert_array_equal(model.predict_proba(features), first)
    other = MLPHead(2, seed=3, max_epochs=5, stop_loss_ratio=0)
    other.fit(features[:20], labels[:20])
    np.testing.assert_array_equal(other.predict_proba(features), first)


def test_different_seeds_give_different_initial_weights(blobs):
    features, labels = blobs
    a, b = MLPHead(2, seed=0, max_epochs=1), MLPHead(2, seed=1, max_epochs=1)
    a.fit(features, labels)
    b.fit(features, labels)
    assert not np.allclose(a.predict_proba(features), b.predict_proba(features))


def test_predict_proba_is_f_cls_of_f_enc(blobs):
    features, labels = blobs
    model = MLPHead(3, hidden_dim=16, max_epochs=3)
    model.fit(features, labels)
    probabilities = model.predict_proba(features)
    embeddings = model.embed(features)
    assert embeddings.shape == (labels.size, 16)
    assert probabilities.shape == (labels.size, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(model.proba_from_embedding(embeddings), probabilities, atol=1e-6)


def test_three_class_fit_learns_separable_blobs():
    features, labels = make_blobs(n_classes=3, separation=4.0)
    model = MLPHead(3, max_epochs=200)
    model.fit(features, labels)
    assert (model.predict(features) == labels).mean() > 0.95


@pytest.mark.parametrize(
    "features, labels, message",
    [
        (np.full((4, 3), np.nan), [0, 1, 0, 1], "NaN"),
        (np.zeros(4), [0, 1, 0, 1], "2-D"),
        (np.zeros((4, 3)), [0, 1, 0], "expected 4"),
        (np.zeros((4, 3)), [0, 1, 2, 1], r"\[0, 2\)"),
        (np.zeros((4, 3)), [0.5, 1, 0, 1], "integer"),
    ],
)
def test_bad_training_input_is_rejected_with_a_clear_message(features, labels, message):
    with pytest.raises(ValidationError, match=message):
        MLPHead(2).fit(features, labels)


def test_predicting_before_fit_or_with_the_wrong_width_fails_clearly(blobs):
    features, labels = blobs
    model = MLPHead(2, max_epochs=1)
    with pytest.raises(ValidationError, match="not fitted"):
        model.predict_proba(features)
    model.fit(features, labels)
    with pytest.raises(ValidationError, match="8 columns"):
        model.predict_proba(np.zeros((2, 5), dtype=np.float32))


@pytest.mark.parametrize("kwargs", [{"n_classes": 1}, {"n_classes": 2, "batch_size": 0}, {"n_classes": 2, "stop_loss_ratio": 1.5}])
def test_bad_constructor_arguments_are_rejected(kwargs):
    with pytest.raises(ValidationError):
        MLPHead(**kwargs)
