import numpy as np
import pytest

from anchoral.strategies import EntropySampling, LeastConfidence, MarginSampling, RandomSampling
from anchoral.strategies.ranking import top_k_random_ties
from anchoral.strategies.uncertainty import entropy, least_confidence, margin
from tests.strategies.helpers import state_with_probabilities

PROBABILITIES = np.array([
    [0.9, 0.05, 0.05],
    [0.4, 0.35, 0.25],
    [0.5, 0.5, 0.0],
    [1.0, 0.0, 0.0],
])


def test_scores_match_their_formulas_by_hand():
    np.testing.assert_allclose(least_confidence(PROBABILITIES), [0.1, 0.6, 0.5, 0.0])
    np.testing.assert_allclose(margin(PROBABILITIES), [-0.85, -0.05, 0.0, -1.0])
    expected_entropy = [
        -(0.9 * np.log(0.9) + 2 * 0.05 * np.log(0.05)),
        -(0.4 * np.log(0.4) + 0.35 * np.log(0.35) + 0.25 * np.log(0.25)),
        np.log(2),
        0.0,
    ]
    np.testing.assert_allclose(entropy(PROBABILITIES), expected_entropy)


@pytest.mark.parametrize("n_classes", [2, 5, 33, 100])  # the per-column loop and the row reduction
def test_scores_equal_their_row_formulas_for_any_number_of_classes(n_classes):
    probabilities = np.random.default_rng(n_classes).dirichlet(np.full(n_classes, 0.3), size=500)
    probabilities[:7] = np.eye(n_classes)[np.arange(7) % n_classes]  # exact zeros: 0 log 0 = 0
    np.testing.assert_allclose(least_confidence(probabilities), 1 - probabilities.max(axis=1), rtol=1e-12)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(probabilities > 0, probabilities * np.log(probabilities), 0.0)
    np.testing.assert_allclose(entropy(probabilities), -terms.sum(axis=1), rtol=1e-12, atol=1e-15)
    top_two = np.sort(probabilities, axis=1)[:, -2:]
    np.testing.assert_allclose(margin(probabilities), top_two[:, 0] - top_two[:, 1], rtol=1e-12)


def test_the_three_scores_rank_differently_on_multiclass_and_pick_their_own_best():
    rng = np.random.default_rng(0)
    state = state_with_probabilities(PROBABILITIES)
    assert LeastConfidence().select(state, 1, rng).indices.tolist() == [1]
    assert EntropySampling().select(state, 1, rng).indices.tolist() == [1]
    assert MarginSampling().select(state, 1, rng).indices.tolist() == [2]


def test_for_binary_tasks_all_three_give_the_same_ranking():
    rng = np.random.default_rng(1)
    positive = rng.random(200)
    probabilities = np.stack([1 - positive, positive], axis=1)
    rankings = [np.argsort(-score(probabilities), kind="stable") for score in (least_confidence, entropy, margin)]
    np.testing.assert_array_equal(rankings[0], rankings[1])
    np.testing.assert_array_equal(rankings[0], rankings[2])


@pytest.mark.parametrize("strategy_class", [LeastConfidence, EntropySampling, MarginSampling])
def test_selects_the_most_uncertain_unlabeled_examples_best_first(strategy_class):
    positive = np.array([0.5, 0.9, 0.45, 0.03, 0.6, 0.99])
    state = state_with_probabilities(np.stack([1 - positive, positive], axis=1), labeled_indices=[0], labeled_labels=[1])
    selection = strategy_class().select(state, 3, np.random.default_rng(0))
    assert selection.indices.tolist() == [2, 4, 1]  # 0 is labeled, so it is never picked
    assert np.all(np.diff(selection.scores) <= 0)


@pytest.mark.parametrize("strategy_class", [LeastConfidence, EntropySampling, MarginSampling])
def test_ties_are_broken_by_the_seeded_rng_not_by_index_order(strategy_class):
    state = state_with_probabilities(np.full((50, 2), 0.5))
    picks = {tuple(strategy_class().select(state, 5, np.random.default_rng(seed)).indices) for seed in range(10)}
    assert len(picks) > 5  # different seeds, different tie-breaks
    assert all(pick != (0, 1, 2, 3, 4) for pick in picks)
    same = [strategy_class().select(state, 5, np.random.default_rng(7)).indices.tolist() for _ in range(2)]
    assert same[0] == same[1]


def test_top_k_random_ties_returns_the_k_largest_best_first():
    rng = np.random.default_rng(0)
    scores = rng.random(1000)
    chosen = top_k_random_ties(scores, 10, rng)
    np.testing.assert_array_equal(chosen, np.argsort(-scores)[:10])


def test_top_k_random_ties_draws_uniformly_among_tied_values_at_the_cut():
    scores = np.array([3.0, 1.0, 1.0, 1.0, 1.0, 0.0])
    counts = np.zeros(6)
    for seed in range(400):
        chosen = top_k_random_ties(scores, 2, np.random.default_rng(seed))
        assert chosen[0] == 0
        counts[chosen[1]] += 1
    assert counts[0] == 0 and counts[5] == 0
    assert counts[1:5].min() > 60  # each of the four tied entries is picked about 100 times


def test_random_sampling_is_uniform_over_unlabeled_and_seeded():
    state = state_with_probabilities(np.full((30, 2), 0.5), labeled_indices=[0, 1, 2])
    first = RandomSampling().select(state, 10, np.random.default_rng(3)).indices
    again = RandomSampling().select(state, 10, np.random.default_rng(3)).indices
    np.testing.assert_array_equal(first, again)
    assert not set(first) & {0, 1, 2}
    counts = np.zeros(30)
    for seed in range(300):
        counts[RandomSampling().select(state, 10, np.random.default_rng(seed)).indices] += 1
    assert counts[:3].sum() == 0
    assert counts[3:].min() > 60  # expected 300 * 10 / 27 = 111 each
