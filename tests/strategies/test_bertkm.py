import numpy as np
import pytest

from anchoral.errors import ValidationError
from anchoral.strategies.bertkm import BertKM, l2_normalise
from tests.strategies.helpers import FixedProbabilityModel, state_on_features


class ScrambledEmbeddingModel(FixedProbabilityModel):
    """A model whose representation groups rows by index modulo 3, across the feature clusters."""

    def embed(self, features):
        return np.eye(3, dtype=np.float32)[np.arange(len(features)) % 3]


def directional_clusters(n_per_cluster=12, seed=0):
    """Three tight clusters of directions (around the axes) with norms spread over 1..1000."""
    rng = np.random.default_rng(seed)
    directions = np.repeat(np.eye(3), n_per_cluster, axis=0) + rng.normal(scale=0.02, size=(3 * n_per_cluster, 3))
    norms = np.tile(np.logspace(0, 3, n_per_cluster), 3)[:, None]
    return directions * norms, np.repeat(np.arange(3), n_per_cluster)


def test_picks_the_point_nearest_the_centre_of_each_well_separated_cluster():
    features, cluster = directional_clusters()
    state = state_on_features(features, labeled_indices=[0, 12])
    selection = BertKM().select(state, 3, np.random.default_rng(0))
    assert sorted(cluster[selection.indices].tolist()) == [0, 1, 2]
    normalised = l2_normalise(features)
    for c in range(3):
        members = np.setdiff1d(np.flatnonzero(cluster == c), [0, 12])
        centre = normalised[members].mean(axis=0)
        nearest = members[np.linalg.norm(normalised[members] - centre, axis=1).argmin()]
        assert nearest in selection.indices
    assert selection.diagnostics == {"distinct_nearest": 3, "filled_at_random": 0, "minibatch": False}


def test_l2_normalisation_clusters_by_direction_not_by_norm():
    # Two rays 20 degrees apart, norms 1..100: unnormalised, k-means splits near from far
    # points; normalised, the rays are two tight clusters.
    rng = np.random.default_rng(0)
    angles = np.repeat(np.radians([0.0, 20.0]), 15) + rng.normal(scale=0.01, size=30)
    norms = np.tile(np.logspace(0, 2, 15), 2)
    features = np.stack([np.cos(angles), np.sin(angles)], axis=1) * norms[:, None]
    ray = np.repeat([0, 1], 15)
    for seed in range(5):
        selection = BertKM().select(state_on_features(features), 2, np.random.default_rng(seed))
        assert sorted(ray[selection.indices].tolist()) == [0, 1]


def test_clusters_the_pretrained_features_not_the_model_representation():
    features, cluster = directional_clusters()
    state = state_on_features(features, model_class=ScrambledEmbeddingModel)
    selection = BertKM().select(state, 3, np.random.default_rng(0))
    assert sorted(cluster[selection.indices].tolist()) == [0, 1, 2]


def test_the_minibatch_path_also_picks_one_per_cluster():
    features, cluster = directional_clusters(n_per_cluster=40)
    selection = BertKM(minibatch_above=0).select(state_on_features(features), 3, np.random.default_rng(0))
    assert sorted(cluster[selection.indices].tolist()) == [0, 1, 2]
    assert selection.diagnostics["minibatch"] is True


def test_shared_nearest_points_are_replaced_by_random_unchosen_unlabeled_points():
    features = np.vstack([np.tile([1.0, 0.0], (6, 1)), [[0.0, 1.0]]])
    state = state_on_features(features, labeled_indices=[0])
    picks = [BertKM().select(state, 4, np.random.default_rng(seed)) for seed in range(10)]
    for selection in picks:
        assert len(set(selection.indices.tolist())) == 4 and 0 not in selection.indices
        assert 6 in selection.indices
        assert selection.diagnostics["distinct_nearest"] == 2 and selection.diagnostics["filled_at_random"] == 2
    assert len({tuple(sorted(s.indices.tolist())) for s in picks}) > 1


def test_same_seed_gives_the_same_selection_and_never_a_labeled_index():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(200, 6))
    labeled = np.arange(0, 200, 4)
    state = state_on_features(features, labeled_indices=labeled)
    first = BertKM().select(state, 12, np.random.default_rng(9))
    second = BertKM().select(state, 12, np.random.default_rng(9))
    np.testing.assert_array_equal(first.indices, second.indices)
    assert len(set(first.indices.tolist())) == 12
    assert not set(first.indices.tolist()) & set(labeled.tolist())


@pytest.mark.parametrize("params, message", [({"n_init": 0}, "n_init"), ({"minibatch_above": -1}, "minibatch_above")])
def test_rejects_bad_parameters_naming_them(params, message):
    with pytest.raises(ValidationError, match=message):
        BertKM(**params)
