import numpy as np
import pytest

from anchoral.models import MLPHead
from anchoral.strategies.base import RoundState
from anchoral.strategies.coreset import CoreSet
from tests.conftest import make_blobs
from tests.strategies.helpers import state_on_features


@pytest.fixture(scope="module")
def fitted_state():
    features, labels = make_blobs(n_per_class=60, n_features=8)
    labeled = np.arange(0, 120, 6)
    model = MLPHead(2, hidden_dim=16, max_epochs=20)
    report = model.fit(features[labeled], labels[labeled])
    return RoundState(features, labeled, labels[labeled], model, report, 2)


def test_picks_the_farthest_point_from_labeled_and_already_picked_on_a_line():
    state = state_on_features([0, 1, 2, 10, 11, 20], labeled_indices=[0])
    selection = CoreSet().select(state, 3, np.random.default_rng(0))
    # 20 is farthest from 0; then 10 (10 from 0 and from 20) beats 11 (9 from 20); then 2.
    assert selection.indices.tolist() == [5, 3, 2]
    np.testing.assert_allclose(selection.scores, [20, 10, 2], rtol=1e-6)
    assert selection.diagnostics["covering_radius_before"] == pytest.approx(20)
    assert selection.diagnostics["covering_radius_after"] == pytest.approx(1)


def test_ties_are_broken_at_random_not_by_index_order():
    state = state_on_features([-1, 0, 1], labeled_indices=[1])
    firsts = {int(CoreSet().select(state, 1, np.random.default_rng(seed)).indices[0]) for seed in range(20)}
    assert firsts == {0, 2}


def test_without_labeled_examples_the_first_pick_is_random_then_the_farthest():
    state = state_on_features([0, 1, 5], labeled_indices=[])
    picks = [CoreSet().select(state, 2, np.random.default_rng(seed)).indices.tolist() for seed in range(20)]
    assert {first for first, _ in picks} == {0, 1, 2}
    farthest_from = {0: 2, 1: 2, 2: 0}
    assert all(second == farthest_from[first] for first, second in picks)


def test_points_that_coincide_with_labeled_ones_are_still_picked_without_duplicates():
    state = state_on_features([3, 3, 3, 3, 3], labeled_indices=[0, 1])
    selection = CoreSet().select(state, 3, np.random.default_rng(0))
    assert sorted(selection.indices.tolist()) == [2, 3, 4]


def test_measures_distance_in_the_model_representation(fitted_state):
    selection = CoreSet().select(fitted_state, 1, np.random.default_rng(0))
    embeddings = fitted_state.pool_embeddings
    unlabeled = fitted_state.unlabeled_indices
    distances = np.linalg.norm(embeddings[unlabeled][:, None] - embeddings[fitted_state.labeled_indices][None], axis=2)
    assert selection.indices[0] == unlabeled[distances.min(axis=1).argmax()]


def test_same_seed_gives_the_same_selection_and_never_a_labeled_index(fitted_state):
    first = CoreSet().select(fitted_state, 15, np.random.default_rng(3))
    second = CoreSet().select(fitted_state, 15, np.random.default_rng(3))
    np.testing.assert_array_equal(first.indices, second.indices)
    assert len(set(first.indices.tolist())) == 15
    assert not set(first.indices.tolist()) & set(fitted_state.labeled_indices.tolist())
