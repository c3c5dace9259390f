import dataclasses

import numpy as np
import pytest

from anchoral.errors import UnknownNameError, ValidationError
from anchoral.strategies import STRATEGIES, RoundState, Selection, Strategy, available_strategies, make_strategy
from tests.strategies.helpers import state_with_probabilities


def test_round_state_carries_only_what_a_deployment_has():
    fields = {field.name for field in dataclasses.fields(RoundState)}
    # executor says where pool-wide work runs, not what is known about the pool
    assert fields == {"features", "labeled_indices", "labeled_labels", "model", "fit_report", "n_classes", "inputs",
                      "executor"}


def test_round_state_rejects_labels_that_do_not_match_the_labeled_indices():
    with pytest.raises(ValidationError, match="one label per labeled index"):
        state_with_probabilities(np.full((5, 2), 0.5), labeled_indices=[0, 1], labeled_labels=[0, 1, 1])


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_returns_distinct_unlabeled_indices(name):
    rng = np.random.default_rng(0)
    positive = rng.random(40)
    labeled = np.arange(0, 40, 3)
    features = rng.normal(size=(40, 5))  # distinct points, so geometry-based strategies have something to do
    state = state_with_probabilities(np.stack([1 - positive, positive], axis=1), labeled, labeled % 2, features=features)
    selection = make_strategy(name).select(state, 20, rng)
    assert len(selection.indices) == 20
    assert len(set(selection.indices.tolist())) == 20
    assert not set(selection.indices.tolist()) & set(labeled.tolist())


@pytest.mark.parametrize("n, message", [(0, "positive integer"), (-3, "positive integer"), (2.5, "positive integer"), (99, "exceeds the 8 unlabeled")])
def test_select_rejects_a_bad_batch_size(n, message):
    state = state_with_probabilities(np.full((10, 2), 0.5), labeled_indices=[0, 1])
    with pytest.raises(ValidationError, match=message):
        make_strategy("entropy").select(state, n, np.random.default_rng(0))


def test_select_requires_a_numpy_generator():
    state = state_with_probabilities(np.full((10, 2), 0.5))
    with pytest.raises(ValidationError, match="numpy.random.Generator"):
        make_strategy("random").select(state, 2, 42)


def test_a_strategy_that_returns_a_labeled_index_is_caught():
    class Cheater(Strategy):
        name = "cheater"

        def _select(self, state, n, rng):
            return Selection(indices=state.labeled_indices[:n])

    state = state_with_probabilities(np.full((10, 2), 0.5), labeled_indices=[0, 1])
    with pytest.raises(AssertionError, match="broke its contract"):
        Cheater().select(state, 2, np.random.default_rng(0))


def test_unknown_strategy_names_list_the_valid_ones():
    with pytest.raises(UnknownNameError) as info:
        make_strategy("alvinn")
    message = str(info.value)
    assert "alvinn" in message
    for name in available_strategies():
        assert name in message


def test_bad_strategy_parameters_name_the_strategy():
    with pytest.raises(ValidationError, match="'entropy'"):
        make_strategy("entropy", temperature=2)


def test_the_default_set_leaves_out_ablations_and_starts_with_random():
    from anchoral.strategies import default_strategies

    names = default_strategies()
    assert names[0] == "random"
    assert {"alvin", "entropy", "least-confidence", "badge", "cal", "alfamix", "bert-km", "coreset"} <= set(names)
    assert not any(STRATEGIES[name].is_ablation for name in names)
    assert {"alvin-ran", "alvin-int-all", "alvin-uni", "alvin-kmean"} <= set(available_strategies()) - set(names)
