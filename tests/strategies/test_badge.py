import numpy as np
import pytest

from anchoral.models import MLPHead
from anchoral.strategies.badge import Badge, gradient_embedding_seeding, gradient_embedding_weights
from anchoral.strategies.base import RoundState
from tests.conftest import make_blobs
from tests.strategies.helpers import FixedProbabilityModel


def explicit_gradient_embeddings(embeddings, probabilities):
    """The d*C vectors BADGE's paper defines, built the slow way: block c = h * (1[c = y_hat] - p_c)."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    indicator = np.eye(probabilities.shape[1])[probabilities.argmax(axis=1)]
    return np.einsum("nc,nd->ncd", indicator - probabilities, np.asarray(embeddings, dtype=np.float64)).reshape(
        len(probabilities), -1
    )


def state_with(embeddings, probabilities, labeled_indices=()):
    labeled = np.asarray(labeled_indices, dtype=np.int64)
    return RoundState(
        features=np.asarray(embeddings, dtype=np.float32),
        labeled_indices=labeled,
        labeled_labels=np.zeros(labeled.size, dtype=np.int64),
        model=FixedProbabilityModel(probabilities),
        fit_report=None,
        n_classes=np.asarray(probabilities).shape[1],
    )


@pytest.fixture(scope="module")
def fitted_state():
    features, labels = make_blobs(n_per_class=60, n_features=8, n_classes=3, separation=1.5)
    labeled = np.arange(0, 180, 9)
    model = MLPHead(3, hidden_dim=16, max_epochs=20)
    report = model.fit(features[labeled], labels[labeled])
    return RoundState(features, labeled, labels[labeled], model, report, 3)


def test_gradient_embedding_weights_by_hand():
    weights = gradient_embedding_weights([[0.7, 0.2, 0.1], [0.25, 0.15, 0.6]])
    np.testing.assert_allclose(weights, [[0.3, -0.2, -0.1], [-0.25, -0.15, 0.4]])


def test_first_centre_is_the_unlabeled_point_with_the_largest_gradient_embedding_norm(fitted_state):
    selection = Badge().select(fitted_state, 5, np.random.default_rng(0))
    unlabeled = fitted_state.unlabeled_indices
    gradients = explicit_gradient_embeddings(
        fitted_state.pool_embeddings[unlabeled], fitted_state.pool_probabilities[unlabeled]
    )
    norms = np.linalg.norm(gradients, axis=1)
    assert selection.indices[0] == unlabeled[norms.argmax()]
    assert selection.diagnostics["first_centre_norm"] == pytest.approx(norms.max(), rel=1e-5)
    assert selection.diagnostics["gradient_dim"] == 16 * 3


def test_binary_tasks_seed_on_the_gradient_embedding_not_the_raw_embedding():
    # Point 0 has the largest raw embedding but a confident prediction; point 1 a small
    # embedding and a 50/50 prediction, so the larger gradient embedding.
    embeddings = [[10.0, 0.0], [0.0, 1.0], [0.5, 0.5]]
    probabilities = [[0.99, 0.01], [0.5, 0.5], [0.9, 0.1]]
    selection = Badge().select(state_with(embeddings, probabilities), 1, np.random.default_rng(0))
    assert selection.indices.tolist() == [1]
    assert selection.diagnostics["first_centre_norm"] == pytest.approx(np.sqrt(0.5))


def test_the_origin_is_never_a_centre():
    # A (largest norm) is chosen first; B is nearly A; Z has a zero gradient embedding
    # (one-hot prediction). Seeding from the origin would give Z distance 0 and never pick
    # it; measured from A, Z is by far the farthest point.
    embeddings = [[4.0, 0.0], [3.96, 0.0], [1.0, 1.0]]
    probabilities = [[0.5, 0.5], [0.5, 0.5], [1.0, 0.0]]
    state = state_with(embeddings, probabilities)
    for seed in range(20):
        assert Badge().select(state, 2, np.random.default_rng(seed)).indices.tolist() == [0, 2]


def test_the_next_centre_is_drawn_in_proportion_to_its_squared_distance():
    rng = np.random.default_rng(7)
    embeddings = rng.normal(size=(6, 4))
    probabilities = rng.dirichlet(np.ones(3), size=6)
    weights = gradient_embedding_weights(probabilities)
    gradients = explicit_gradient_embeddings(embeddings, probabilities)
    first = int(np.linalg.norm(gradients, axis=1).argmax())
    squared = ((gradients - gradients[first]) ** 2).sum(axis=1)
    expected = squared / squared.sum()
    draws = 4000
    seconds = [gradient_embedding_seeding(weights, embeddings, 2, np.random.default_rng(s))[0][1] for s in range(draws)]
    observed = np.bincount(seconds, minlength=6) / draws
    assert observed[first] == 0
    np.testing.assert_allclose(observed, expected, atol=4 * np.sqrt(0.25 / draws))


def test_coinciding_points_are_never_picked_twice_and_fall_back_to_uniform_draws():
    state = state_with(np.ones((6, 2)), np.tile([0.6, 0.4], (6, 1)), labeled_indices=[0])
    selection = Badge().select(state, 5, np.random.default_rng(0))
    assert sorted(selection.indices.tolist()) == [1, 2, 3, 4, 5]
    assert selection.diagnostics["uniform_draws"] == 4


def test_zero_distance_points_get_no_probability_while_others_remain():
    # Rows 1 and 2 coincide with row 0 (the first centre); only row 3 is elsewhere.
    embeddings = np.array([[2.0, 0.0], [2.0, 0.0], [2.0, 0.0], [0.0, 0.1]])
    probabilities = np.tile([0.5, 0.5], (4, 1))
    weights = gradient_embedding_weights(probabilities)
    for seed in range(20):
        positions, uniform_draws = gradient_embedding_seeding(weights, embeddings, 2, np.random.default_rng(seed))
        assert positions[1] == 3 and uniform_draws == 0


def test_same_seed_gives_the_same_selection_and_never_a_labeled_index(fitted_state):
    first = Badge().select(fitted_state, 20, np.random.default_rng(5))
    second = Badge().select(fitted_state, 20, np.random.default_rng(5))
    np.testing.assert_array_equal(first.indices, second.indices)
    assert len(set(first.indices.tolist())) == 20
    assert not set(first.indices.tolist()) & set(fitted_state.labeled_indices.tolist())
