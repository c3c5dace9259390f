"""A pool memory-mapped from the embedding cache must select exactly what the same pool in memory does."""

import numpy as np
import pytest

from anchoral.models import MLPHead
from anchoral.strategies import STRATEGIES, make_strategy
from anchoral.strategies.base import RoundState
from tests.conftest import make_blobs
from tests.strategies.helpers import FixedProbabilityModel, two_epoch_report


@pytest.fixture(scope="module")
def pools(tmp_path_factory):
    features, labels = make_blobs(n_per_class=150, n_features=12, separation=1.5, seed=11)
    path = tmp_path_factory.mktemp("pool") / "features.npy"
    np.save(path, features)
    labeled = np.arange(0, 300, 10)
    model = MLPHead(2, hidden_dim=16, max_epochs=15, seed=0)
    model.fit(features[labeled], labels[labeled])
    # The MLP head embeds into memory; the identity model hands strategies the mapped rows themselves.
    identity = FixedProbabilityModel(model.predict_proba(features))
    return {"memory": features, "mapped": np.load(path, mmap_mode="r"), "labels": labels, "labeled": labeled,
            "mlp": model, "identity": identity}


@pytest.mark.parametrize("model", ["mlp", "identity"])
@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_a_memory_mapped_pool_gives_the_same_selection(pools, name, model):
    labeled = pools["labeled"]
    selections = []
    for key in ("memory", "mapped"):
        # Every third labeled example forgotten: ALVIN takes its anchor path, not the fallback.
        state = RoundState(pools[key], labeled, pools["labels"][labeled], pools[model],
                           two_epoch_report(labeled.size), 2)
        selections.append(make_strategy(name).select(state, 12, np.random.default_rng(5)))
    assert isinstance(pools["mapped"], np.memmap)
    np.testing.assert_array_equal(selections[1].indices, selections[0].indices)
