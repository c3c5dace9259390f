import numpy as np
import pytest

from anchoral.errors import ValidationError
from anchoral.models import MLPHead
from anchoral.strategies.base import RoundState
from anchoral.strategies.cal import ContrastiveActiveLearning, mean_neighbour_kl
from tests.conftest import make_blobs
from tests.strategies.helpers import FixedProbabilityModel


def kl(p, q):
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    return float(np.sum(p * np.log(p / q)))


def state_with(embeddings, probabilities, labeled_indices, labeled_labels=None):
    labeled = np.asarray(labeled_indices, dtype=np.int64)
    labels = np.zeros(labeled.size, dtype=np.int64) if labeled_labels is None else np.asarray(labeled_labels)
    return RoundState(
        features=np.asarray(embeddings, dtype=np.float32),
        labeled_indices=labeled,
        labeled_labels=labels,
        model=FixedProbabilityModel(probabilities),
        fit_report=None,
        n_classes=np.asarray(probabilities).shape[1],
    )


@pytest.fixture(scope="module")
def fitted_state():
    features, labels = make_blobs(n_per_class=60, n_features=8, separation=1.0)
    labeled = np.arange(0, 120, 5)
    model = MLPHead(2, hidden_dim=16, max_epochs=20)
    report = model.fit(features[labeled], labels[labeled])
    return RoundState(features, labeled, labels[labeled], model, report, 2)


def test_scores_are_the_mean_kl_from_the_labeled_neighbours_predictions_by_hand():
    # Directions: labeled 0 at 0 deg, labeled 1 at 90 deg, labeled 2 at 180 deg.
    embeddings = [[1, 0], [0, 1], [-1, 0], [1, 0.1], [-1, 0.2], [0.1, 1]]
    probabilities = [[0.9, 0.1], [0.5, 0.5], [0.2, 0.8], [0.3, 0.7], [0.25, 0.75], [0.6, 0.4]]
    state = state_with(embeddings, probabilities, labeled_indices=[0, 1, 2])
    selection = ContrastiveActiveLearning(n_neighbours=2).select(state, 3, np.random.default_rng(0))
    expected = {
        3: (kl([0.9, 0.1], [0.3, 0.7]) + kl([0.5, 0.5], [0.3, 0.7])) / 2,
        4: (kl([0.2, 0.8], [0.25, 0.75]) + kl([0.5, 0.5], [0.25, 0.75])) / 2,
        5: (kl([0.5, 0.5], [0.6, 0.4]) + kl([0.9, 0.1], [0.6, 0.4])) / 2,
    }
    ranked = sorted(expected, key=expected.get, reverse=True)
    assert selection.indices.tolist() == ranked
    np.testing.assert_allclose(selection.scores, [expected[i] for i in ranked], rtol=1e-6)


def test_a_candidate_at_a_labeled_point_is_scored_against_that_point_not_itself():
    # Candidate 1 sits exactly on labeled 0; an index over L and U together could match
    # it to itself (KL 0). Over L only its neighbour is labeled 0, whose prediction differs.
    embeddings = [[1, 0], [1, 0], [0, 1]]
    probabilities = [[0.9, 0.1], [0.4, 0.6], [0.5, 0.5]]
    state = state_with(embeddings, probabilities, labeled_indices=[0])
    selection = ContrastiveActiveLearning(n_neighbours=1).select(state, 2, np.random.default_rng(0))
    scores = dict(zip(selection.indices.tolist(), selection.scores.tolist()))
    assert scores[1] == pytest.approx(kl([0.9, 0.1], [0.4, 0.6]))
    assert scores[2] == pytest.approx(kl([0.9, 0.1], [0.5, 0.5]))


def test_uses_the_neighbours_predictions_not_their_gold_labels():
    embeddings = [[1, 0], [1, 0.1]]
    probabilities = [[0.8, 0.2], [0.6, 0.4]]
    state = state_with(embeddings, probabilities, labeled_indices=[0], labeled_labels=[1])
    selection = ContrastiveActiveLearning().select(state, 1, np.random.default_rng(0))
    assert selection.scores[0] == pytest.approx(kl([0.8, 0.2], [0.6, 0.4]))


def test_neighbours_are_found_after_l2_normalisation():
    # Unnormalised, candidate (0, 1) is nearer labeled (1, 0) than labeled (0, 10); normalised
    # it coincides with the direction of (0, 10).
    embeddings = [[1, 0], [0, 10], [0, 1]]
    probabilities = [[0.9, 0.1], [0.3, 0.7], [0.5, 0.5]]
    state = state_with(embeddings, probabilities, labeled_indices=[0, 1])
    selection = ContrastiveActiveLearning(n_neighbours=1).select(state, 1, np.random.default_rng(0))
    assert selection.scores[0] == pytest.approx(kl([0.3, 0.7], [0.5, 0.5]))


def test_k_is_capped_at_the_number_of_labeled_examples():
    embeddings = [[1, 0], [0, 1], [1, 1]]
    probabilities = [[0.9, 0.1], [0.3, 0.7], [0.5, 0.5]]
    state = state_with(embeddings, probabilities, labeled_indices=[0, 1])
    selection = ContrastiveActiveLearning().select(state, 1, np.random.default_rng(0))
    assert selection.diagnostics["n_neighbours"] == 2
    assert selection.scores[0] == pytest.approx((kl([0.9, 0.1], [0.5, 0.5]) + kl([0.3, 0.7], [0.5, 0.5])) / 2)


def test_a_class_the_candidate_rules_out_costs_a_finite_score():
    scores = mean_neighbour_kl(np.array([[0.5, 0.5], [1.0, 0.0]]), np.array([[0], [1]]),
                               np.array([[1.0, 0.0], [1.0, 0.0]]))
    assert np.isfinite(scores).all()
    assert scores[0] > 10 and scores[1] == 0


def test_needs_at_least_one_labeled_example():
    state = state_with([[1, 0], [0, 1]], [[0.5, 0.5], [0.5, 0.5]], labeled_indices=[])
    with pytest.raises(ValidationError, match="at least one labeled"):
        ContrastiveActiveLearning().select(state, 1, np.random.default_rng(0))


def test_same_seed_gives_the_same_selection_and_never_a_labeled_index(fitted_state):
    first = ContrastiveActiveLearning().select(fitted_state, 15, np.random.default_rng(2))
    second = ContrastiveActiveLearning().select(fitted_state, 15, np.random.default_rng(2))
    np.testing.assert_array_equal(first.indices, second.indices)
    assert len(set(first.indices.tolist())) == 15
    assert not set(first.indices.tolist()) & set(fitted_state.labeled_indices.tolist())


def test_rejects_a_non_positive_neighbour_count():
    with pytest.raises(ValidationError, match="n_neighbours"):
        ContrastiveActiveLearning(n_neighbours=0)


def brute_force_cal_scores(embeddings, probabilities, labeled, k):
    """CAL's scores for every unlabeled row, the slow way: normalise everything, sort all distances."""
    embeddings = np.asarray(embeddings, dtype=np.float64)
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    directions = embeddings / np.where(norms > 0, norms, 1.0)
    unlabeled = np.setdiff1d(np.arange(len(embeddings)), labeled)
    distances = ((directions[unlabeled][:, None] - directions[labeled][None]) ** 2).sum(axis=2)
    nearest = np.argsort(distances, axis=1, kind="stable")[:, :k]
    scores = np.array([np.mean([kl(probabilities[labeled[j]], probabilities[i]) for j in row])
                       for i, row in zip(unlabeled, nearest)])
    return unlabeled, scores


def random_cal_problem(seed, n=400, d=12, n_labeled=30):
    rng = np.random.default_rng(seed)
    # Rows of very different lengths: only their directions may matter.
    embeddings = rng.normal(size=(n, d)) * rng.uniform(0.01, 100, size=(n, 1))
    probabilities = rng.dirichlet(np.ones(3), size=n)
    labeled = rng.choice(n, n_labeled, replace=False)
    return embeddings, probabilities, labeled


@pytest.mark.parametrize("zero_labeled_row", [False, True])
def test_scores_equal_a_brute_force_search_over_normalised_representations(zero_labeled_row):
    embeddings, probabilities, labeled = random_cal_problem(seed=4)
    if zero_labeled_row:  # a dead-ReLU representation among the labeled: the normalised path
        embeddings[labeled[3]] = 0.0
    state = state_with(embeddings, probabilities, labeled_indices=labeled)
    selection = ContrastiveActiveLearning(n_neighbours=5).select(state, 370, np.random.default_rng(0))
    unlabeled, expected = brute_force_cal_scores(embeddings, probabilities, labeled, 5)
    by_index = dict(zip(unlabeled.tolist(), expected.tolist()))
    np.testing.assert_allclose(selection.scores, [by_index[i] for i in selection.indices.tolist()], rtol=1e-6)
