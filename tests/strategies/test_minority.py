import numpy as np
import pytest

from anchoral.errors import ValidationError
from anchoral.strategies import MinoritySeeking, make_strategy
from anchoral.strategies.base import RoundState
from anchoral.strategies.minority import pool_clusters, split_by_deficit
from tests.strategies.helpers import FixedProbabilityModel, two_epoch_report

# Two tight clusters (x = -5 and x = +5), 40 points each; within each, y spreads the points.
RNG = np.random.default_rng(0)
FEATURES = np.vstack([np.c_[np.full(40, -5.0), np.linspace(-1, 1, 40)],
                      np.c_[np.full(40, 5.0), np.linspace(-1, 1, 40)]]).astype(np.float32)
FEATURES += RNG.normal(scale=0.01, size=FEATURES.shape).astype(np.float32)


def state(labeled, labels, p_positive):
    probabilities = np.c_[1 - p_positive, p_positive]
    return RoundState(features=FEATURES, labeled_indices=np.asarray(labeled), labeled_labels=np.asarray(labels),
                      model=FixedProbabilityModel(probabilities), fit_report=two_epoch_report(len(labeled)),
                      n_classes=2)


def test_the_batch_is_split_in_proportion_to_each_cells_deficit():
    np.testing.assert_array_equal(split_by_deficit(np.array([10, 0, 0, 10]), 10), [0, 5, 5, 0])
    np.testing.assert_array_equal(split_by_deficit(np.array([6, 2, 0, 0]), 4), [0, 0, 2, 2])
    np.testing.assert_array_equal(split_by_deficit(np.array([3, 3]), 3).sum(), 3)


def test_it_fills_the_empty_cells_with_the_points_most_likely_of_their_class():
    # Labeled: class 0 in the left cluster, class 1 in the right one (the shortcut cells).
    labeled = [0, 1, 2, 40, 41, 42]
    labels = [0, 0, 0, 1, 1, 1]
    p_positive = np.where(np.arange(80) < 40, 0.1, 0.9)
    p_positive[[30, 31, 32, 33]] = 0.6  # the left cluster's likeliest positives
    p_positive[[70, 71, 72, 73]] = 0.35  # the right cluster's likeliest negatives
    selection = MinoritySeeking(confident_quantile=0.0).select(state(labeled, labels, p_positive), 8,
                                                               np.random.default_rng(0))
    assert set(selection.indices.tolist()) == {30, 31, 32, 33, 70, 71, 72, 73}
    counts, allocation = np.array(selection.diagnostics["cell_counts"]), np.array(selection.diagnostics["allocation"])
    assert sorted(counts.tolist()) == [0, 0, 3, 3]  # cluster ids are k-means' own
    np.testing.assert_array_equal(allocation, np.where(counts == 0, 4, 0))
    assert not set(selection.indices.tolist()) & set(labeled)


def test_points_between_clusters_are_not_candidates():
    features = FEATURES.copy()
    features[30] = [-0.05, 1.0]  # its direction lies between the clusters (k-means sees unit rows), a little left
    local = RoundState(features=features, labeled_indices=np.array([0, 1, 40, 41]),
                       labeled_labels=np.array([0, 0, 1, 1]),
                       model=FixedProbabilityModel(np.c_[np.full(80, 0.5), np.full(80, 0.5)]),
                       fit_report=two_epoch_report(4), n_classes=2)
    probabilities = local.pool_probabilities
    probabilities[30] = [0.01, 0.99]  # the most "positive" point of the pool, but unsure of its cluster
    assert 30 in MinoritySeeking(confident_quantile=0.0).select(local, 10, np.random.default_rng(0)).indices
    assert 30 not in MinoritySeeking(confident_quantile=0.1).select(local, 10, np.random.default_rng(0)).indices


def test_a_cell_short_of_candidates_passes_its_share_to_entropy_and_says_so():
    labeled = list(range(0, 40)) + [40]
    labels = [1] * 40 + [1]  # the left cluster is entirely labeled: cell (class 0, left) has no candidates
    labels[0] = 0
    selection = MinoritySeeking(confident_quantile=0.0).select(state(labeled, labels, np.full(80, 0.5)), 20,
                                                               np.random.default_rng(0))
    assert any("candidates" in f and "entropy" in f for f in selection.diagnostics["fallbacks"])
    assert np.unique(selection.indices).size == 20 and not set(selection.indices.tolist()) & set(labeled)


def test_the_pool_is_clustered_once_for_every_round():
    first = pool_clusters(FEATURES, 2, 0)
    assert pool_clusters(FEATURES, 2, 0) is first
    assert pool_clusters(FEATURES.copy(), 2, 0) is first  # same contents, same entry
    shifted = FEATURES + 1
    assert pool_clusters(shifted, 2, 0) is not first


def test_it_is_registered_and_reproducible_from_the_seed():
    labeled, labels = [0, 1, 40, 41], [0, 0, 1, 1]
    rounds = [make_strategy("minority-seeking").select(state(labeled, labels, np.full(80, 0.5)), 6,
                                                       np.random.default_rng(3)).indices for _ in range(2)]
    np.testing.assert_array_equal(*rounds)


@pytest.mark.parametrize(("params", "message"), [
    ({"n_clusters": 0}, "n_clusters must be a positive integer"),
    ({"confident_quantile": 1.0}, r"confident_quantile must be a number in \[0, 1\)"),
])
def test_bad_parameters_are_one_clear_line(params, message):
    with pytest.raises(ValidationError, match=message):
        MinoritySeeking(**params)


def test_one_group_balances_the_classes_alone():
    labeled, labels = [0, 1, 2, 3], [0, 0, 0, 0]  # no positive labeled yet
    p_positive = np.linspace(0.0, 1.0, 80)
    selection = MinoritySeeking(n_clusters=1, confident_quantile=0.0).select(
        state(labeled, labels, p_positive), 4, np.random.default_rng(0))
    assert selection.diagnostics["allocation"] == [0, 4]
    assert set(selection.indices.tolist()) == {76, 77, 78, 79}  # the likeliest positives
    assert selection.diagnostics["fallbacks"] == []


def test_a_pool_with_fewer_distinct_points_than_clusters_falls_back_and_says_so():
    features = np.ones((30, 3), dtype=np.float32)
    local = RoundState(features=features, labeled_indices=np.array([0, 1]), labeled_labels=np.array([0, 1]),
                       model=FixedProbabilityModel(np.c_[np.full(30, 0.5), np.full(30, 0.5)]),
                       fit_report=two_epoch_report(2), n_classes=2)
    selection = MinoritySeeking().select(local, 6, np.random.default_rng(0))
    assert np.unique(selection.indices).size == 6 and not {0, 1} & set(selection.indices.tolist())
    assert any("form only 1 of 2 clusters" in note for note in selection.diagnostics["fallbacks"])


def test_a_batch_as_large_as_the_unlabeled_pool_takes_all_of_it_and_a_larger_one_is_refused():
    labeled, labels = list(range(0, 80, 2)), [0, 1] * 20
    every = state(labeled, labels, np.full(80, 0.5))
    for quantile in (0.0, 0.5):
        selection = MinoritySeeking(confident_quantile=quantile).select(every, 40, np.random.default_rng(0))
        assert sorted(selection.indices.tolist()) == list(range(1, 80, 2))
    assert selection.diagnostics["fallbacks"]  # at 0.5 half the pool is a candidate: entropy took the rest
    with pytest.raises(ValidationError, match="exceeds the 40 unlabeled examples"):
        MinoritySeeking().select(every, 41, np.random.default_rng(0))


def test_equal_scores_are_broken_at_random_but_reproducibly():
    labeled, labels = [0, 40], [0, 1]
    flat = state(labeled, labels, np.full(80, 0.5))
    picks = {tuple(MinoritySeeking(confident_quantile=0.0).select(flat, 4, np.random.default_rng(seed)).indices)
             for seed in range(5)}
    assert len(picks) > 1
    again = MinoritySeeking(confident_quantile=0.0).select(flat, 4, np.random.default_rng(3)).indices
    np.testing.assert_array_equal(again, MinoritySeeking(confident_quantile=0.0).select(
        flat, 4, np.random.default_rng(3)).indices)
