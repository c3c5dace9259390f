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


def eager_greedy_k_center(embeddings, labeled, n, rng):
    """The textbook algorithm: one float64 distance row to every pick, ties by rng."""
    embeddings = np.asarray(embeddings, dtype=np.float64)
    unlabeled = np.setdiff1d(np.arange(len(embeddings)), labeled)
    points = embeddings[unlabeled]
    if len(labeled):
        min_distances = ((points[:, None] - embeddings[labeled][None]) ** 2).sum(axis=2).min(axis=1)
    else:
        min_distances = np.full(unlabeled.size, np.inf)
    picks = []
    for _ in range(n):
        best = np.flatnonzero(min_distances == min_distances.max())
        pick = int(best[0]) if best.size == 1 else int(rng.choice(best))
        picks.append(pick)
        min_distances = np.minimum(min_distances, ((points - points[pick]) ** 2).sum(axis=1))
        min_distances[pick] = -np.inf
    return unlabeled[picks]


def coreset_problem(points, n_labeled, seed):
    rng = np.random.default_rng(seed)
    labeled = rng.choice(len(points), n_labeled, replace=False) if n_labeled else np.array([], dtype=np.int64)
    return state_on_features(points, labeled_indices=labeled), labeled


def test_lazy_picks_equal_the_eager_algorithm_in_high_dimension_and_touch_few_points():
    points = np.random.default_rng(8).normal(size=(3000, 64))
    state, labeled = coreset_problem(points, 40, seed=1)
    selection = CoreSet().select(state, 60, np.random.default_rng(0))
    expected = eager_greedy_k_center(points.astype(np.float32), labeled, 60, np.random.default_rng(0))
    np.testing.assert_array_equal(selection.indices, expected)
    assert selection.diagnostics["points_evaluated"] < 3000 // 2  # the laziness is real, not a full pass per pick


@pytest.mark.parametrize("n_labeled", [0, 5])
def test_lazy_picks_equal_the_eager_algorithm_when_every_bound_gets_beaten(n_labeled):
    # Two dimensions, 1,500 points: each pick pulls down the bounds of its neighbours, so the
    # frontier must grow well past its first 256 points.
    points = np.random.default_rng(9).uniform(size=(1500, 2))
    state, labeled = coreset_problem(points, n_labeled, seed=2)
    selection = CoreSet().select(state, 120, np.random.default_rng(4))
    expected = eager_greedy_k_center(points.astype(np.float32), labeled, 120, np.random.default_rng(4))
    np.testing.assert_array_equal(selection.indices, expected)
    assert selection.diagnostics["points_evaluated"] > 256


def test_lazy_picks_equal_the_eager_algorithm_with_exact_ties_everywhere():
    # Small integer grid with repeated points: many exactly equal distances, broken by rng alike.
    points = np.random.default_rng(10).integers(0, 6, size=(800, 3)).astype(np.float64)
    state, labeled = coreset_problem(points, 10, seed=3)
    for seed in range(3):
        selection = CoreSet().select(state, 50, np.random.default_rng(seed))
        expected = eager_greedy_k_center(points, labeled, 50, np.random.default_rng(seed))
        np.testing.assert_array_equal(selection.indices, expected)


def test_asking_for_a_farthest_point_when_all_are_centres_is_an_error_not_a_hang():
    from anchoral.strategies.coreset import LazyFarthestPoint

    vectors = np.array([[0.0], [1.0]], dtype=np.float32)
    search = LazyFarthestPoint(vectors, np.arange(2), np.array([4.0, 9.0]))
    search.add_centre(1)
    search.add_centre(0)
    with pytest.raises(ValueError, match="already a centre"):
        search.farthest()
