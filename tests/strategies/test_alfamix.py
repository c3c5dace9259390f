import dataclasses
import json

import numpy as np
import pytest

from anchoral.errors import ValidationError
from anchoral.models import MLPHead
from anchoral.strategies.alfamix import (
    AlfaMix,
    class_anchors,
    closed_form_alpha,
    cross_entropy_gradient,
    eps_schedule,
    prediction_flips,
)
from anchoral.strategies.base import RoundState
from tests.conftest import make_blobs
from tests.strategies.helpers import FixedProbabilityModel, state_with_probabilities


class NumpySoftmaxModel:
    """A linear-softmax classifier with no torch inside (exercises the finite-difference route)."""

    def __init__(self, weight, bias):
        self.weight, self.bias = np.asarray(weight, dtype=np.float64), np.asarray(bias, dtype=np.float64)
        self.n_classes = self.weight.shape[0]

    def proba_from_embedding(self, embeddings):
        logits = np.asarray(embeddings, dtype=np.float64) @ self.weight.T + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        exponentials = np.exp(logits)
        return exponentials / exponentials.sum(axis=1, keepdims=True)


def softmax_gradient(weight, probabilities, targets):
    """Closed form of d CE(softmax(Wz + b), y) / dz = W^T (p - onehot(y))."""
    return (probabilities - np.eye(probabilities.shape[1])[targets]) @ weight


@pytest.fixture(scope="module")
def blobs_model():
    features, labels = make_blobs(n_per_class=40, n_features=8)
    model = MLPHead(2, hidden_dim=16, max_epochs=30)
    model.fit(features, labels)
    mean_0, mean_1 = features[labels == 0].mean(axis=0), features[labels == 1].mean(axis=0)
    line = (mean_0 + np.linspace(0, 1, 401)[:, None] * (mean_1 - mean_0)).astype(np.float32)
    boundary_position = int(np.abs(model.predict_proba(line)[:, 1] - 0.5).argmin())
    shifts = (1.5, 2, 2.5, 3)
    far = np.stack([mean_0 + s * (mean_0 - mean_1) for s in shifts] + [mean_1 + s * (mean_1 - mean_0) for s in shifts])
    return {
        "features": features,
        "labels": labels,
        "model": model,
        "boundary": line[boundary_position],
        "near_boundary": line[boundary_position - 4 : boundary_position + 5],
        "far": far.astype(np.float32),
    }


def state_with_extra_points(blobs_model, extra):
    """Every blob point labeled; ``extra`` rows appended as the unlabeled pool."""
    features = np.vstack([blobs_model["features"], extra]).astype(np.float32)
    labeled = np.arange(len(blobs_model["labels"]))
    return RoundState(features, labeled, blobs_model["labels"], blobs_model["model"], None, 2)


def test_closed_form_alpha_by_hand_is_not_clamped():
    embeddings = np.zeros((1, 4))
    anchor = np.array([1.0, 2.0, 0.0, -0.01])
    gradients = np.array([[1.0, -1.0, 1.0, -0.5]])
    alpha = closed_form_alpha(embeddings, anchor, gradients, eps=0.2)
    scale = 0.2 / np.sqrt(4) * np.sqrt(5.0001) / np.sqrt(3.25)
    # ratio grad / (z* - z) = [1, -0.5, (no movement possible), 50]: negative and above-eps values kept.
    np.testing.assert_allclose(alpha, [[scale, -0.5 * scale, 0.0, 50 * scale]], rtol=1e-12)


def test_eps_grows_by_the_step_while_below_one_so_the_last_value_may_pass_one():
    assert eps_schedule(0.2) == [0.2, 0.4, 0.6, 0.8, 1.0]
    assert eps_schedule(0.3) == [0.3, 0.6, 0.9, 1.2]
    assert eps_schedule(0.25) == [0.25, 0.5, 0.75, 1.0]
    assert eps_schedule(1.0) == [1.0]


class LinearSoftmaxOnIdentity(NumpySoftmaxModel):
    """f_enc = identity, f_cls = softmax(W z + b): every quantity of the paper's formula is known in closed form."""

    def embed(self, features):
        return np.asarray(features, dtype=np.float32)

    def predict_proba(self, features):
        return self.proba_from_embedding(features)


def candidate_counts_from_the_paper(weight, bias, labeled, labels, unlabeled, steps, clamp):
    """ALFA-Mix Eq. 5 written out on its own: exact softmax gradient, a = eps/sqrt(d) ||z*-z|| / ||g|| g / (z*-z),
    a candidate when the mix with any class mean changes the prediction; cumulative counts per eps."""
    z = unlabeled.astype(np.float64)
    logits = z @ weight.T + bias
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    pseudo_labels = probabilities.argmax(axis=1)
    gradient = softmax_gradient(weight, probabilities, pseudo_labels)
    anchors = [labeled[labels == c].mean(axis=0) for c in range(weight.shape[0])]
    candidates, counts = np.zeros(len(z), dtype=bool), []
    for eps in steps:
        for anchor in anchors:
            difference = anchor - z
            alpha = (eps / np.sqrt(z.shape[1]) * np.linalg.norm(difference, axis=1, keepdims=True)
                     / np.linalg.norm(gradient, axis=1, keepdims=True) * gradient / difference)
            if clamp:
                alpha = np.clip(alpha, 1e-8, eps)
            mixed = (1 - alpha) * z + alpha * anchor
            candidates |= (mixed @ weight.T + bias).argmax(axis=1) != pseudo_labels
        counts.append(int(candidates.sum()))
    return counts


def test_candidate_counts_per_eps_match_the_papers_unclamped_closed_form():
    weight = np.array([[1.0, -0.5, 0.3, 0.0], [-0.4, 1.0, -0.2, 0.5], [0.2, 0.1, 1.0, -0.8]])
    bias = np.array([0.0, 0.1, -0.1])
    labeled = np.array([[2.0, -1, 0.1, 0.1], [1.5, -0.5, 0.5, 0.3], [-1, 2, 0.1, 1], [-0.5, 1.5, -0.5, 0.5],
                        [0.1, 0.1, 2, -1.5], [0.5, 0.1, 1.5, -1]])
    labels = np.array([0, 0, 1, 1, 2, 2])
    unlabeled = np.random.default_rng(13).normal(size=(12, 4)).round(1) + 0.033
    steps = [0.2, 0.4, 0.6, 0.8, 1.0]
    expected = candidate_counts_from_the_paper(weight, bias, labeled, labels, unlabeled, steps, clamp=False)
    assert expected == [6, 9, 10, 12, 12]
    # The clamp to [1e-8, eps] that an earlier REFERENCE.md asked for gives fewer candidates on this example.
    assert candidate_counts_from_the_paper(weight, bias, labeled, labels, unlabeled, steps, clamp=True) == [3, 7, 9, 9, 11]
    state = RoundState(np.vstack([labeled, unlabeled]).astype(np.float32), np.arange(6), labels,
                       LinearSoftmaxOnIdentity(weight, bias), None, 3)
    selection = AlfaMix(eps_step=0.2).select(state, 12, np.random.default_rng(0))
    assert selection.diagnostics["candidates_per_eps"] == expected
    assert selection.diagnostics["final_eps"] == 1.0
    stopped_early = AlfaMix(eps_step=0.2).select(state, 9, np.random.default_rng(0))
    assert stopped_early.diagnostics["candidates_per_eps"] == [6, 9, 10]
    assert stopped_early.diagnostics["final_eps"] == 0.6


def test_anchors_are_the_labeled_class_means_and_a_missing_class_gets_the_overall_mean():
    anchors, missing = class_anchors(np.array([[0.0, 2.0], [2.0, 0.0], [4.0, 4.0]]), np.array([0, 0, 1]), 3)
    np.testing.assert_allclose(anchors, [[1, 1], [4, 4], [2, 2]])
    assert missing == [2]


def test_autograd_gradient_matches_the_linear_softmax_closed_form(blobs_model):
    model = blobs_model["model"]
    embeddings = model.embed(blobs_model["features"][:10])
    probabilities = model.proba_from_embedding(embeddings)
    targets = probabilities.argmax(axis=1)
    weight = model.network_[2].weight.detach().numpy()
    np.testing.assert_allclose(
        cross_entropy_gradient(model, embeddings, targets), softmax_gradient(weight, probabilities, targets), atol=1e-6
    )


def test_models_without_a_torch_head_get_finite_difference_gradients():
    rng = np.random.default_rng(0)
    weight, bias = rng.normal(size=(3, 5)), rng.normal(size=3)
    model = NumpySoftmaxModel(weight, bias)
    embeddings = rng.normal(size=(7, 5)).astype(np.float32)
    probabilities = model.proba_from_embedding(embeddings)
    targets = np.array([0, 1, 2, 0, 1, 2, 0])
    np.testing.assert_allclose(
        cross_entropy_gradient(model, embeddings, targets), softmax_gradient(weight, probabilities, targets), atol=1e-4
    )


def test_a_point_near_the_decision_boundary_flips_and_a_far_point_does_not(blobs_model):
    model = blobs_model["model"]
    points = np.vstack([blobs_model["boundary"], blobs_model["far"][0]])
    embeddings = model.embed(points)
    predictions = model.proba_from_embedding(embeddings).argmax(axis=1)
    anchors, _ = class_anchors(model.embed(blobs_model["features"]), blobs_model["labels"], 2)
    gradients = cross_entropy_gradient(model, embeddings, predictions)
    other_anchor = anchors[1 - predictions[0]]
    assert prediction_flips(model, embeddings, predictions, other_anchor, gradients, eps=0.2)[0]
    for eps in eps_schedule(0.2):
        for anchor in anchors:
            assert not prediction_flips(model, embeddings, predictions, anchor, gradients, eps)[1]


def test_selects_the_only_candidate_after_growing_eps_to_one(blobs_model):
    state = state_with_extra_points(blobs_model, np.vstack([blobs_model["far"], blobs_model["boundary"]]))
    boundary_index = len(blobs_model["labels"]) + len(blobs_model["far"])
    selection = AlfaMix().select(state, 1, np.random.default_rng(0))
    assert selection.indices.tolist() == [boundary_index]
    assert selection.diagnostics["candidate_count"] == 1
    assert selection.diagnostics["final_eps"] == 1.0
    assert selection.diagnostics["candidates_per_eps"] == [1, 1, 1, 1, 1]
    assert selection.diagnostics["filled_at_random"] == 0


def test_stops_growing_eps_once_there_are_more_candidates_than_the_batch(blobs_model):
    near = blobs_model["near_boundary"]
    state = state_with_extra_points(blobs_model, np.vstack([blobs_model["far"], near]))
    first_near = len(blobs_model["labels"]) + len(blobs_model["far"])
    selection = AlfaMix().select(state, 2, np.random.default_rng(0))
    assert selection.diagnostics["final_eps"] == 0.2
    assert selection.diagnostics["candidate_count"] > 2
    assert selection.diagnostics["filled_at_random"] == 0
    assert all(index >= first_near for index in selection.indices)


def test_never_returns_duplicates_when_candidates_are_scarce(blobs_model):
    state = state_with_extra_points(blobs_model, np.vstack([blobs_model["far"], blobs_model["boundary"]]))
    boundary_index = len(blobs_model["labels"]) + len(blobs_model["far"])
    for seed in range(5):
        selection = AlfaMix().select(state, 5, np.random.default_rng(seed))
        assert len(set(selection.indices.tolist())) == 5
        assert boundary_index in selection.indices
        assert selection.diagnostics["filled_at_random"] == 4
    everything = AlfaMix().select(state, 9, np.random.default_rng(0))
    assert sorted(everything.indices.tolist()) == list(range(len(blobs_model["labels"]), boundary_index + 1))


def test_needs_at_least_one_labeled_example(blobs_model):
    nothing = np.array([], dtype=np.int64)
    state = RoundState(blobs_model["features"], nothing, nothing, blobs_model["model"], None, 2)
    with pytest.raises(ValidationError, match="at least one labeled"):
        AlfaMix().select(state, 1, np.random.default_rng(0))


class ModelWithoutFcls(FixedProbabilityModel):
    def proba_from_embedding(self, embeddings):
        raise NotImplementedError


def test_a_model_without_f_cls_gets_an_error_that_says_so():
    state = state_with_probabilities([[0.4, 0.6], [0.7, 0.3], [0.5, 0.5]], labeled_indices=[0], labeled_labels=[1],
                                     features=[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    state = dataclasses.replace(state, model=ModelWithoutFcls(state.model.probabilities))
    with pytest.raises(ValidationError, match="proba_from_embedding"):
        AlfaMix().select(state, 1, np.random.default_rng(0))


def test_same_seed_gives_the_same_selection_and_never_a_labeled_index():
    features, labels = make_blobs(n_per_class=60, n_features=8, separation=1.0)
    labeled = np.arange(0, 120, 6)
    model = MLPHead(2, hidden_dim=16, max_epochs=20)
    model.fit(features[labeled], labels[labeled])
    state = RoundState(features, labeled, labels[labeled], model, None, 2)
    first = AlfaMix().select(state, 10, np.random.default_rng(4))
    second = AlfaMix().select(state, 10, np.random.default_rng(4))
    np.testing.assert_array_equal(first.indices, second.indices)
    assert len(set(first.indices.tolist())) == 10
    assert not set(first.indices.tolist()) & set(labeled.tolist())
    assert json.loads(json.dumps(first.diagnostics)) == first.diagnostics
    assert first.diagnostics["gradient"] == "autograd"


@pytest.mark.parametrize("params, message", [({"eps_step": 0}, "eps_step"), ({"eps_step": 1.5}, "eps_step"),
                                             ({"n_init": 0}, "n_init"), ({"minibatch_above": -1}, "minibatch_above")])
def test_rejects_bad_parameters_naming_them(params, message):
    with pytest.raises(ValidationError, match=message):
        AlfaMix(**params)
