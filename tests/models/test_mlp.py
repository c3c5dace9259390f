import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional

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


def reference_fit(model: MLPHead, features: np.ndarray, labels: np.ndarray, sample_weight=None):
    """The plain torch loop MLPHead.fit must reproduce: the same construction under the
    seed, autograd, torch.optim.Adam, mean (weighted) cross-entropy per minibatch, the
    seeded minibatch order, Tamkin's stop rule, and correctness after every epoch."""
    torch.manual_seed(model.seed)
    network = nn.Sequential(
        nn.Linear(features.shape[1], model.hidden_dim), nn.ReLU(), nn.Linear(model.hidden_dim, model.n_classes)
    )
    optimizer = torch.optim.Adam(network.parameters(), lr=model.learning_rate, betas=(0.9, 0.999), eps=1e-8)
    inputs, targets = torch.from_numpy(features), torch.from_numpy(labels)
    if sample_weight is not None:
        sample_weight = torch.from_numpy((sample_weight / sample_weight.mean()).astype(np.float32))
    order = torch.Generator().manual_seed(model.seed)
    losses, correctness, stopped = [], [], False
    while len(correctness) < model.max_epochs and not stopped:
        permutation = torch.randperm(labels.size, generator=order)
        for start in range(0, labels.size, model.batch_size):
            rows = permutation[start : start + model.batch_size]
            if sample_weight is None:
                loss = functional.cross_entropy(network(inputs[rows]), targets[rows])
            else:
                per_example = functional.cross_entropy(network(inputs[rows]), targets[rows], reduction="none")
                loss = (sample_weight[rows] * per_example).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            if model.stop_loss_ratio > 0 and losses[-1] < model.stop_loss_ratio * losses[0]:
                stopped = True
                break
        with torch.no_grad():
            correctness.append((network(inputs).argmax(dim=1) == targets).numpy())
    return network, np.stack(correctness), losses


@pytest.mark.parametrize(
    "n_classes, params, weighted",
    [
        (3, {"max_epochs": 300}, False),  # the stop rule fires mid-epoch; 135 rows leave a last minibatch of 7
        (2, {"max_epochs": 4, "stop_loss_ratio": 0, "hidden_dim": 32, "batch_size": 7, "seed": 5}, False),
        (2, {"max_epochs": 300, "learning_rate": 3e-3}, True),  # weighted, stops mid-epoch
        (2, {"max_epochs": 6, "stop_loss_ratio": 0, "batch_size": 8}, True),
    ],
)
def test_fit_matches_a_plain_torch_autograd_adam_loop(n_classes, params, weighted):
    features, labels = make_blobs(n_per_class=45, n_features=12, n_classes=n_classes, separation=2.0)
    sample_weight = np.random.default_rng(2).uniform(0, 3, size=labels.size) if weighted else None
    if weighted:
        sample_weight[:10] = 0
    model = MLPHead(n_classes, **params)
    report = model.fit(features, labels, sample_weight=sample_weight)
    network, correctness, losses = reference_fit(model, features, labels, sample_weight)
    assert (report.epochs, report.steps) == (correctness.shape[0], len(losses))
    np.testing.assert_array_equal(report.correctness, correctness)
    np.testing.assert_allclose([report.first_loss, report.final_loss], [losses[0], losses[-1]], rtol=1e-4, atol=1e-6)
    for ours, theirs in zip(model.network_.parameters(), network.parameters()):
        np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), atol=1e-4)


def test_weighted_loss_is_the_mean_of_weight_times_cross_entropy_over_the_minibatch():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(4, 5)).astype(np.float32)
    labels = np.array([0, 1, 1, 0])
    model = MLPHead(2, hidden_dim=6, batch_size=4, max_epochs=1, learning_rate=1e-9)
    report = model.fit(features, labels, sample_weight=[1.0, 3.0, 0.0, 4.0])
    state = {name: value.double().numpy() for name, value in model.initial_state_.items()}
    hidden = np.maximum(features @ state["0.weight"].T + state["0.bias"], 0)
    logits = hidden @ state["2.weight"].T + state["2.bias"]
    cross_entropy = np.log(np.exp(logits).sum(axis=1)) - logits[np.arange(4), labels]
    expected = np.mean(np.array([0.5, 1.5, 0.0, 2.0]) * cross_entropy)  # weights rescaled to mean 1
    assert report.first_loss == pytest.approx(expected, rel=1e-5)


def test_weights_equal_everywhere_give_the_unweighted_fit(blobs):
    features, labels = blobs
    plain, doubled = MLPHead(2, max_epochs=5), MLPHead(2, max_epochs=5)
    plain_report = plain.fit(features, labels)
    doubled_report = doubled.fit(features, labels, sample_weight=np.full(labels.size, 2.0))
    assert doubled_report.epoch_losses == plain_report.epoch_losses
    np.testing.assert_array_equal(doubled_report.correctness, plain_report.correctness)
    np.testing.assert_array_equal(doubled.predict_proba(features), plain.predict_proba(features))


@pytest.mark.parametrize(
    "sample_weight, message",
    [
        ([1.0, -1.0, 1.0, 1.0], "non-negative; got -1.0 at position 1"),
        ([1.0, np.nan, 1.0, 1.0], "finite"),
        ([1.0, np.inf, 1.0, 1.0], "finite"),
        ([0.0, 0.0, 0.0, 0.0], "all zero"),
        ([1.0, 1.0, 1.0], r"shape \(4,\), one weight per example; got shape \(3,\)"),
        (np.ones((4, 1)), "shape"),
        (["a", "b", "c", "d"], "numeric"),
    ],
)
def test_bad_sample_weights_are_rejected_with_a_clear_message(sample_weight, message):
    features, labels = np.zeros((4, 3), dtype=np.float32), [0, 1, 0, 1]
    with pytest.raises(ValidationError, match="sample_weight must .*" + message):
        MLPHead(2).fit(features, labels, sample_weight=sample_weight)
