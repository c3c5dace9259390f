import dataclasses
import json

import numpy as np
import pytest

from anchoral.errors import ValidationError
from anchoral.metrics.minority import minority_inference_quality
from anchoral.models.base import FitReport
from anchoral.models.mlp import MLPHead
from anchoral.strategies.alvin import (
    ALVIN,
    ALVINInterpolateAll,
    ALVINKMeans,
    ALVINRandomPairs,
    ALVINUniform,
    form_pairs,
    interpolate,
)
from anchoral.groups import infer_minority
from anchoral.strategies.base import RoundState
from anchoral.strategies.uncertainty import EntropySampling, entropy
from tests.strategies.helpers import FixedProbabilityModel

# -- a hand-built pool whose representations are its features ------------------------
# Labeled (pool 0-9): per class, minority at x = 0 and majority at x = 4, so every
# anchor lies on a horizontal corridor (y = 0 for class 0, y = 10 for class 1).
LABELED_POINTS = np.array([
    [0, 0], [0, 0.2], [4, 0], [4, 0.2], [4, -0.2],          # class 0: 2 minority, 3 majority
    [0, 10], [0, 10.2], [4, 10], [4, 10.2], [4, 9.8],       # class 1: 2 minority, 3 majority
], dtype=np.float32)
LABELED_LABELS = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
PLANTED_MINORITY = np.array([True, True, False, False, False, True, True, False, False, False])
N_NEAR, N_FAR = 60, 20
NEAR = np.arange(10, 10 + N_NEAR)                           # unlabeled points along the corridors
FAR = np.arange(10 + N_NEAR, 10 + N_NEAR + N_FAR)           # unlabeled points far away, most uncertain


def corridor_state(minority=PLANTED_MINORITY, seed=0) -> RoundState:
    rng = np.random.default_rng(seed)
    near = np.column_stack([rng.uniform(0, 4, N_NEAR), rng.normal(0, 0.2, N_NEAR) + np.repeat([0, 10], N_NEAR // 2)])
    far = 60 + rng.normal(size=(N_FAR, 2))
    embeddings = np.concatenate([LABELED_POINTS, near, far]).astype(np.float32)
    positive = np.concatenate([rng.uniform(0.6, 0.99, 10), rng.uniform(0.55, 0.98, N_NEAR), 0.5 + np.linspace(0.001, 0.04, N_FAR)])
    probabilities = np.column_stack([1 - positive, positive])
    # Minority examples are forgotten (correct after epoch 1, wrong after epoch 2); majority stay correct.
    correctness = np.stack([np.ones(10, dtype=bool), ~np.asarray(minority)])
    return state_from(embeddings, probabilities, np.arange(10), LABELED_LABELS, correctness)


def state_from(embeddings, probabilities, labeled_indices, labeled_labels, correctness, n_classes=2) -> RoundState:
    report = FitReport(
        epoch_losses=(1.0,) * len(correctness), first_loss=1.0, final_loss=0.1, correctness=np.asarray(correctness),
        stop_reason="epoch_cap", epochs=len(correctness), steps=len(correctness), seconds=0.0,
    )
    return RoundState(
        features=np.asarray(embeddings, dtype=np.float32),
        labeled_indices=np.asarray(labeled_indices, dtype=np.int64),
        labeled_labels=np.asarray(labeled_labels, dtype=np.int64),
        model=FixedProbabilityModel(probabilities),
        fit_report=report,
        n_classes=n_classes,
    )


# -- interpolation --------------------------------------------------------------------
def test_interpolate_hand_case_puts_anchors_on_the_segment_at_lambda():
    minority, majority = np.array([[0.0, 0.0]]), np.array([[4.0, 2.0]])
    anchors = interpolate(minority, majority, np.array([[0.0, 0.25, 1.0]]))
    np.testing.assert_allclose(anchors, [[[0, 0], [1, 0.5], [4, 2]]])


def test_lambda_is_the_weight_on_the_majority_representation():
    rng = np.random.default_rng(0)
    minority, majority = rng.normal(size=(5, 7)), rng.normal(size=(5, 7))
    np.testing.assert_array_equal(interpolate(minority, majority, np.zeros(5)), minority)
    np.testing.assert_array_equal(interpolate(minority, majority, np.ones(5)), majority)


def test_every_anchor_lies_on_its_pairs_segment_at_its_own_lambda():
    rng = np.random.default_rng(1)
    minority, majority = rng.normal(size=(20, 16)), rng.normal(size=(20, 16))
    lam = rng.beta(2, 2, size=(20, 15))
    anchors = interpolate(minority, majority, lam)
    assert anchors.shape == (20, 15, 16)
    np.testing.assert_allclose(anchors - minority[:, None], lam[..., None] * (majority - minority)[:, None], atol=1e-12)
    to_minority = np.linalg.norm(anchors - minority[:, None], axis=2)
    to_majority = np.linalg.norm(anchors - majority[:, None], axis=2)
    segment_length = np.linalg.norm(majority - minority, axis=1)[:, None]
    np.testing.assert_allclose(to_minority + to_majority, np.broadcast_to(segment_length, lam.shape))
    np.testing.assert_allclose(to_minority, lam * segment_length)


@pytest.mark.parametrize("lam, message", [(np.array([1.5]), r"\[0, 1\]"), (np.zeros((2, 3)), "lam must have shape")])
def test_interpolate_rejects_weights_outside_the_unit_interval_or_of_the_wrong_shape(lam, message):
    with pytest.raises(ValidationError, match=message):
        interpolate(np.zeros((1, 3)), np.ones((1, 3)), lam)


# -- minority inference ---------------------------------------------------------------
def test_infer_minority_flags_forgotten_and_never_learned_examples_only():
    correctness = np.array([
        # forgotten, never correct, always correct, learned late, forgotten at the end, relearned after forgetting
        [1, 0, 1, 0, 1, 0],
        [0, 0, 1, 0, 1, 1],
        [1, 0, 1, 1, 0, 0],
        [1, 0, 1, 1, 0, 1],
    ], dtype=bool)
    np.testing.assert_array_equal(infer_minority(correctness), [True, True, False, False, True, True])


def test_infer_minority_needs_at_least_two_epochs_and_says_how_to_get_them():
    with pytest.raises(ValidationError, match=r">= 2 epochs.*max_epochs.*stop_loss_ratio"):
        infer_minority(np.ones((1, 4), dtype=bool))


@pytest.fixture(scope="module")
def planted_state():
    from tests.groups.planted import planted_minority

    features, labels, minority, pool = planted_minority()
    everything = np.vstack([features, pool])
    model = MLPHead(2)
    report = model.fit(features, labels)
    state = RoundState(features=everything, labeled_indices=np.arange(labels.size), labeled_labels=labels,
                       model=model, fit_report=report, n_classes=2)
    return state, minority


@pytest.mark.parametrize("method", ["out-of-fold", "clusters", "early-stopped"])
def test_alvin_with_a_label_free_minority_recalls_more_of_a_planted_minority_than_the_papers_rule(planted_state, method):
    state, minority = planted_state
    labeled = state.labeled_indices

    def recall(selection):
        return minority_inference_quality(selection.diagnostics["minority_indices"], labeled, minority)["recall"]

    paper = ALVIN().select(state, 20, np.random.default_rng(0))
    swapped = ALVIN(minority=method).select(state, 20, np.random.default_rng(0))
    assert swapped.diagnostics["minority"] == method and paper.diagnostics["minority"] == "dynamics"
    assert recall(swapped) >= 0.6 > recall(paper)


def test_alvin_names_the_valid_minority_methods():
    with pytest.raises(ValidationError, match="expected one of: clusters, dynamics, early-stopped, out-of-fold"):
        ALVIN(minority="oracle")


def test_alvin_refuses_a_state_without_training_dynamics():
    state = corridor_state()
    with pytest.raises(ValidationError, match="fit_report is None"):
        ALVIN().select(dataclasses.replace(state, fit_report=None), 5, np.random.default_rng(0))
    one_epoch = dataclasses.replace(state.fit_report, correctness=np.ones((1, 10), dtype=bool))
    with pytest.raises(ValidationError, match=">= 2 epochs"):
        ALVIN().select(dataclasses.replace(state, fit_report=one_epoch), 5, np.random.default_rng(0))


# -- selection contract ---------------------------------------------------------------
def test_selection_is_distinct_unlabeled_examples_drawn_from_the_anchors_neighbourhood():
    selection = ALVIN().select(corridor_state(), 10, np.random.default_rng(0))
    picked = selection.indices.tolist()
    assert len(set(picked)) == 10
    assert set(picked) <= set(NEAR.tolist())  # the far points are more uncertain but no anchor is near them
    assert selection.diagnostics["fallbacks"] == []


def test_selection_is_the_top_entropy_of_the_candidate_set_best_first():
    state = corridor_state()
    selection = ALVIN(k_neighbors=60).select(state, 10, np.random.default_rng(0))  # I = every near point
    near_entropy = entropy(state.pool_probabilities[NEAR])
    np.testing.assert_array_equal(selection.indices, NEAR[np.argsort(-near_entropy)[:10]])
    np.testing.assert_allclose(selection.scores, np.sort(near_entropy)[::-1][:10])


def test_same_seed_same_selection_and_different_seeds_can_differ():
    state = corridor_state()
    strategy = ALVIN(k_neighbors=3, n_anchors_per_pair=2)
    first = strategy.select(state, 8, np.random.default_rng(5)).indices
    np.testing.assert_array_equal(first, strategy.select(state, 8, np.random.default_rng(5)).indices)
    others = {tuple(strategy.select(state, 8, np.random.default_rng(seed)).indices) for seed in range(10)}
    assert len(others) > 1


def test_diagnostics_are_json_serialisable_and_report_the_round():
    diagnostics = ALVIN().select(corridor_state(), 10, np.random.default_rng(0)).diagnostics
    assert json.loads(json.dumps(diagnostics)) == diagnostics
    assert diagnostics["minority_indices"] == {"0": [0, 1], "1": [5, 6]}
    assert diagnostics["majority_count"] == {"0": 3, "1": 3}
    assert diagnostics["n_pairs"] == 4 and diagnostics["n_anchors"] == 4 * 15
    assert 10 <= diagnostics["candidate_set_size"] <= N_NEAR
    assert diagnostics["seconds_anchor_creation"] >= 0 and diagnostics["seconds_example_selection"] >= 0
    assert {k: diagnostics[k] for k in ("alpha", "beta", "k_neighbors", "pairing", "selection")} == {
        "alpha": 2.0, "beta": 2.0, "k_neighbors": 10, "pairing": "random", "selection": "entropy",
    }


def test_each_anchor_falls_at_its_nearest_unlabeled_neighbour():
    state = corridor_state()
    diagnostics = ALVIN().select(state, 10, np.random.default_rng(0)).diagnostics
    nearest = np.asarray(diagnostics["anchor_nearest"])
    assert nearest.size == diagnostics["n_anchors"]
    assert state.unlabeled_mask[nearest].all()
    assert set(nearest.tolist()) <= set(range(state.pool_size))


def test_alvin_reads_only_what_a_round_state_offers():
    read: set[str] = set()

    class RecordingState(RoundState):
        def __getattribute__(self, name):
            if not name.startswith("_"):
                read.add(name)
            return super().__getattribute__(name)

    state = corridor_state()
    recording = RecordingState(**{f.name: getattr(state, f.name) for f in dataclasses.fields(RoundState)})
    ALVIN().select(recording, 10, np.random.default_rng(0))
    public = {f.name for f in dataclasses.fields(RoundState)} | {n for n in vars(RoundState) if not n.startswith("_")}
    assert read <= public
    assert not any("group" in name for name in public)
    assert "labeled_labels" in read and "fit_report" in read


# -- fallbacks ------------------------------------------------------------------------
def test_a_class_without_minority_contributes_no_anchors():
    minority = PLANTED_MINORITY.copy()
    minority[LABELED_LABELS == 1] = False
    diagnostics = ALVIN().select(corridor_state(minority), 5, np.random.default_rng(0)).diagnostics
    assert diagnostics["fallbacks"] == ["class 1: no minority examples"]
    assert diagnostics["n_pairs"] == 2  # class 0 only


def test_a_class_without_majority_contributes_no_anchors():
    minority = PLANTED_MINORITY.copy()
    minority[LABELED_LABELS == 1] = True
    selection = ALVIN().select(corridor_state(minority), 5, np.random.default_rng(0))
    assert selection.diagnostics["fallbacks"] == ["class 1: no majority examples"]
    assert selection.diagnostics["n_pairs"] == 2
    assert (corridor_state().features[selection.indices, 1] < 5).all()  # only class 0's corridor


def test_no_minority_anywhere_falls_back_to_the_top_entropy_of_the_unlabeled_pool():
    state = corridor_state(np.zeros(10, dtype=bool))
    selection = ALVIN().select(state, 5, np.random.default_rng(0))
    assert selection.diagnostics["fallbacks"] == [
        "class 0: no minority examples", "class 1: no minority examples", "no anchors: entropy over the unlabeled pool",
    ]
    assert selection.diagnostics["n_anchors"] == 0 and selection.diagnostics["candidate_set_size"] == 0
    unlabeled = state.unlabeled_indices
    np.testing.assert_array_equal(selection.indices, unlabeled[np.argsort(-entropy(state.pool_probabilities[unlabeled]))[:5]])


def test_a_candidate_set_smaller_than_the_batch_is_taken_whole_and_filled_by_entropy():
    state = corridor_state()
    selection = ALVIN(n_anchors_per_pair=1, k_neighbors=1).select(state, 10, np.random.default_rng(0))
    size = selection.diagnostics["candidate_set_size"]
    assert 1 <= size <= 4  # four anchors, one neighbour each
    assert selection.diagnostics["fallbacks"] == [f"candidate set {size} < batch 10: filled by entropy"]
    assert set(selection.indices[:size].tolist()) <= set(NEAR.tolist())
    far_by_entropy = FAR[np.argsort(-entropy(state.pool_probabilities[FAR]))]
    np.testing.assert_array_equal(selection.indices[size:], far_by_entropy[: 10 - size])


def test_no_fill_when_the_candidate_set_covers_the_batch():
    selection = ALVIN(n_anchors_per_pair=1, k_neighbors=1).select(corridor_state(), 1, np.random.default_rng(0))
    assert selection.diagnostics["fallbacks"] == []


def test_fewer_majority_than_minority_pairs_an_equal_number_of_minority():
    labels = np.zeros(6, dtype=np.int64)
    minority = np.array([True, True, True, True, False, False])
    pairs = form_pairs(labels, minority, 1, np.random.default_rng(0))
    assert pairs.size == 2
    assert set(pairs.majority_positions.tolist()) <= {4, 5}
    assert len(set(pairs.minority_positions.tolist())) == 2 and set(pairs.minority_positions.tolist()) <= {0, 1, 2, 3}
    assert pairs.fallbacks == ("class 0: 2 majority < 4 minority: paired a random 2 minority",)


# -- pairing, caps and the Beta law ---------------------------------------------------
def random_labeled_groups(seed=0, n=200, n_classes=3):
    rng = np.random.default_rng(seed)
    return rng.integers(n_classes, size=n), rng.random(n) < 0.2


def test_alvin_pairs_each_minority_example_with_a_majority_example_of_its_class():
    labels, minority = random_labeled_groups()
    pairs = form_pairs(labels, minority, 3, np.random.default_rng(0))
    expected = sum(min((minority & (labels == c)).sum(), (~minority & (labels == c)).sum()) for c in range(3))
    assert pairs.size == expected
    assert minority[pairs.minority_positions].all() and not minority[pairs.majority_positions].any()
    np.testing.assert_array_equal(labels[pairs.minority_positions], labels[pairs.majority_positions])
    assert np.unique(pairs.minority_positions).size == pairs.size  # every minority example used once


def test_max_minority_per_class_caps_the_pairs_of_each_class():
    labels, minority = random_labeled_groups()
    pairs = form_pairs(labels, minority, 3, np.random.default_rng(0), max_minority_per_class=4)
    assert np.bincount(labels[pairs.minority_positions], minlength=3).tolist() == [4, 4, 4]


def test_int_all_pairs_every_minority_with_every_majority_of_its_class():
    labels, minority = random_labeled_groups()
    pairs = form_pairs(labels, minority, 3, np.random.default_rng(0), pairing="all")
    expected = {
        (i, j)
        for c in range(3)
        for i in np.flatnonzero(minority & (labels == c))
        for j in np.flatnonzero(~minority & (labels == c))
    }
    assert set(zip(pairs.minority_positions.tolist(), pairs.majority_positions.tolist())) == expected
    assert pairs.size == len(expected)
    diagnostics = ALVINInterpolateAll(n_anchors_per_pair=3).select(corridor_state(), 5, np.random.default_rng(0)).diagnostics
    assert diagnostics["n_pairs"] == 2 * 3 + 2 * 3 and diagnostics["n_anchors"] == 12 * 3
    assert diagnostics["pairing"] == "all"


def test_ran_pairs_random_class_members_regardless_of_group_in_alvins_number():
    labels, minority = random_labeled_groups()
    alvin_pairs = form_pairs(labels, minority, 3, np.random.default_rng(0))
    ran_pairs = form_pairs(labels, minority, 3, np.random.default_rng(0), pairing="random-pairs")
    assert ran_pairs.size == alvin_pairs.size
    np.testing.assert_array_equal(labels[ran_pairs.minority_positions], labels[ran_pairs.majority_positions])
    assert (ran_pairs.minority_positions != ran_pairs.majority_positions).all()
    both_majority = ~minority[ran_pairs.minority_positions] & ~minority[ran_pairs.majority_positions]
    assert both_majority.any()  # a pairing ALVIN never forms
    diagnostics = ALVINRandomPairs().select(corridor_state(), 5, np.random.default_rng(0)).diagnostics
    assert diagnostics["n_pairs"] == 4 and diagnostics["pairing"] == "random-pairs"


def test_the_beta_law_places_anchors_toward_the_minority_or_the_majority():
    state = corridor_state()
    towards = {}
    for name, (alpha, beta) in {"minority": (1.0, 50.0), "majority": (50.0, 1.0)}.items():
        selection = ALVIN(alpha=alpha, beta=beta, k_neighbors=2, selection="uniform").select(state, 6, np.random.default_rng(0))
        towards[name] = state.features[selection.indices, 0].mean()
    assert towards["minority"] < 1.0 < 3.0 < towards["majority"]  # minority sits at x = 0, majority at x = 4


# -- selection variants ---------------------------------------------------------------
def test_uni_samples_the_candidate_set_uniformly_instead_of_by_entropy():
    state = corridor_state()
    by_entropy = ALVIN(k_neighbors=60).select(state, 10, np.random.default_rng(0))
    uniform = ALVINUniform(k_neighbors=60).select(state, 10, np.random.default_rng(0))
    assert set(uniform.indices.tolist()) <= set(NEAR.tolist())
    assert set(uniform.indices.tolist()) != set(by_entropy.indices.tolist())
    assert uniform.scores.mean() < by_entropy.scores.mean()
    np.testing.assert_allclose(uniform.scores, entropy(state.pool_probabilities[uniform.indices]))


def test_kmean_returns_n_distinct_candidates_spread_over_the_candidate_set():
    state = corridor_state()
    selection = ALVINKMeans(k_neighbors=60).select(state, 8, np.random.default_rng(0))
    assert len(set(selection.indices.tolist())) == 8
    assert set(selection.indices.tolist()) <= set(NEAR.tolist())
    heights = state.features[selection.indices, 1]
    assert (heights < 5).any() and (heights > 5).any()  # both corridors, unlike a pure top-entropy pick
    assert selection.diagnostics["selection"] == "kmeans" and selection.diagnostics["fallbacks"] == []


def test_kmean_fills_by_entropy_when_the_candidates_have_fewer_distinct_points_than_clusters():
    state = corridor_state()
    features = state.features.copy()
    features[NEAR] = features[NEAR[:2]].repeat(N_NEAR // 2, axis=0)  # the candidates collapse onto two points
    collapsed = dataclasses.replace(state, features=features)
    selection = ALVINKMeans(k_neighbors=60).select(collapsed, 5, np.random.default_rng(0))
    assert len(set(selection.indices.tolist())) == 5
    assert selection.diagnostics["fallbacks"] == ["k-means left 3 of 5 clusters empty: filled by entropy over the candidate set"]


def test_variants_fix_their_parameter_and_validate_the_rest():
    assert (ALVINRandomPairs().pairing, ALVINInterpolateAll().pairing) == ("random-pairs", "all")
    assert (ALVINUniform().selection, ALVINKMeans().selection) == ("uniform", "kmeans")
    assert ALVINUniform(alpha=0.5).alpha == 0.5
    with pytest.raises(ValidationError, match="fixes selection='uniform'"):
        ALVINUniform(selection="entropy")
    with pytest.raises(ValidationError, match="pairing must be one of"):
        ALVIN(pairing="closest")
    with pytest.raises(ValidationError, match="alpha"):
        ALVIN(alpha=0)
    with pytest.raises(ValidationError, match="max_minority_per_class"):
        ALVIN(max_minority_per_class=0)


# -- a real fit on a pool with a planted minority group ---------------------------------
def planted_minority_pool(seed=0, n_majority=300, n_minority=30, n_features=8):
    """Class 0 at (-1.5, -3), class 1 at (1.5, 3) and class 1's minority at (0.5, -3):
    the minority shares the spurious (second) coordinate of class 0's majority."""
    rng = np.random.default_rng(seed)
    centres = [(-1.5, -3.0), (1.5, 3.0), (0.5, -3.0)]
    sizes = [n_majority, n_majority, n_minority]
    features = np.concatenate([
        np.pad(centre, (0, n_features - 2)) + rng.normal(size=(size, n_features)) for centre, size in zip(centres, sizes)
    ]).astype(np.float32)
    labels = np.repeat([0, 1, 1], sizes)
    is_minority = np.repeat([False, False, True], sizes)
    return features, labels, is_minority


@pytest.fixture(scope="module")
def planted_round():
    features, labels, is_minority = planted_minority_pool()
    rng = np.random.default_rng(0)
    labeled = np.concatenate([
        rng.choice(np.flatnonzero(~is_minority & (labels == 0)), 20, replace=False),
        rng.choice(np.flatnonzero(~is_minority & (labels == 1)), 20, replace=False),
        rng.choice(np.flatnonzero(is_minority), 4, replace=False),
    ])
    model = MLPHead(2, hidden_dim=64, max_epochs=15, stop_loss_ratio=0, seed=0)
    report = model.fit(features[labeled], labels[labeled])
    state = RoundState(
        features=features, labeled_indices=labeled, labeled_labels=labels[labeled], model=model, fit_report=report, n_classes=2
    )
    return state, is_minority


def test_training_dynamics_flag_the_planted_minority(planted_round):
    state, is_minority = planted_round
    diagnostics = ALVIN().select(state, 20, np.random.default_rng(0)).diagnostics
    quality = minority_inference_quality(diagnostics["minority_indices"], state.labeled_indices, is_minority[state.labeled_indices])
    assert quality["recall"] == 1.0 and quality["precision"] >= 0.75


def test_alvin_picks_nearer_the_minority_region_than_entropy_sampling(planted_round):
    state, is_minority = planted_round
    minority_centre = state.features[is_minority].mean(axis=0)

    def mean_distance(indices):
        return np.linalg.norm(state.features[indices] - minority_centre, axis=1).mean()

    alvin = ALVIN().select(state, 20, np.random.default_rng(0)).indices
    uncertainty = EntropySampling().select(state, 20, np.random.default_rng(0)).indices
    assert mean_distance(alvin) < mean_distance(uncertainty)
