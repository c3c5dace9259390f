import numpy as np
import pytest

from anchoral.errors import ValidationError
from anchoral.loop import (
    ActiveLearningLoop,
    LoopConfig,
    SimulatedOracle,
    labeled_size_schedule,
    resolve_size,
    stratified_seed_set,
)
from anchoral.models import MLPHead
from anchoral.strategies import EntropySampling, RandomSampling, Strategy
from tests.conftest import make_blobs


def test_schedule_steps_by_batch_size_and_lands_exactly_on_checkpoints():
    assert labeled_size_schedule(5, 50, 500, checkpoints=(50, 250)) == [5, 50, 100, 150, 200, 250, 300, 350, 400, 450, 500]
    assert labeled_size_schedule(10, 40, 100, checkpoints=(30,)) == [10, 30, 70, 100]
    assert labeled_size_schedule(10, 50, 10) == [10]


def test_sizes_resolve_from_counts_or_fractions_of_the_pool():
    assert resolve_size(0.001, 5000, "seed_size") == 5
    assert resolve_size(0.1, 5000, "budget") == 500
    assert resolve_size(120, 5000, "budget") == 120


@pytest.mark.parametrize("value, message", [(6000, "only 5000"), (0, "positive"), (1.5, "fraction"), ("ten", "count"), (True, "count")])
def test_a_budget_that_does_not_fit_the_pool_is_rejected(value, message):
    with pytest.raises(ValidationError, match=message):
        resolve_size(value, 5000, "budget")


def test_stratified_seed_set_keeps_class_shares_and_a_minimum_per_class():
    labels = np.array([0] * 900 + [1] * 100)
    seed = stratified_seed_set(labels, 20, 2, np.random.default_rng(0))
    assert seed.size == 20 and np.unique(seed).size == 20
    assert (labels[seed] == 1).sum() == 2
    tiny = stratified_seed_set(labels, 1, 2, np.random.default_rng(0))
    assert sorted(labels[tiny].tolist()) == [0, 0, 1, 1]


def test_stratified_seed_set_fails_when_a_class_is_too_rare():
    with pytest.raises(ValidationError, match="1 examples of class 1"):
        stratified_seed_set(np.array([0, 0, 0, 1]), 4, 2, np.random.default_rng(0))


class SpyStrategy(Strategy):
    """Records what it was given, then samples at random."""

    name = "spy"

    def __init__(self):
        self.states = []

    def _select(self, state, n, rng):
        self.states.append(state)
        return RandomSampling()._select(state, n, rng)


def _run(strategy, config=LoopConfig(batch_size=10, budget=60, seed_size=6, checkpoints=(30,)), **kwargs):
    features, labels = make_blobs(n_per_class=60)
    loop = ActiveLearningLoop(strategy, MLPHead(2, max_epochs=20), config)
    seed = stratified_seed_set(labels, 6, 2, np.random.default_rng(0))
    evaluate = lambda model, labeled: {"train_accuracy": float((model.predict(features[labeled]) == labels[labeled]).mean())}
    records = loop.run(features, SimulatedOracle(labels), np.random.default_rng(1), seed_indices=seed, evaluate=evaluate, **kwargs)
    return records, labels, seed


def test_a_run_follows_the_schedule_and_records_every_round():
    records, labels, seed = _run(EntropySampling())
    assert [r.n_labeled for r in records] == [6, 16, 26, 30, 40, 50, 60]
    assert [r.selected.size for r in records] == [10, 10, 4, 10, 10, 10, 0]
    acquired = np.concatenate([r.selected for r in records])
    assert np.unique(np.concatenate([seed, acquired])).size == 60
    for record in records:
        assert record.fit.correctness.shape[1] == record.n_labeled
        assert record.fit_seconds > 0
        assert 0 <= record.metrics["train_accuracy"] <= 1
    assert all(r.select_seconds > 0 for r in records[:-1]) and records[-1].select_seconds == 0


def test_strategies_see_only_the_labels_of_the_labeled_set():
    spy = SpyStrategy()
    records, labels, seed = _run(spy)
    assert len(spy.states) == len(records) - 1
    for state, record in zip(spy.states, records):
        assert state.labeled_indices.size == record.n_labeled
        np.testing.assert_array_equal(state.labeled_labels, labels[state.labeled_indices])
        for value in vars(state).values():  # no attribute holds the pool's labels
            if isinstance(value, np.ndarray) and value.shape == labels.shape:
                assert not np.array_equal(value, labels)


def test_the_same_seed_gives_the_same_run():
    first, _, _ = _run(EntropySampling())
    second, _, _ = _run(EntropySampling())
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a.selected, b.selected)
        assert a.metrics == b.metrics


def test_a_seed_set_missing_a_class_is_rejected():
    features, labels = make_blobs()
    loop = ActiveLearningLoop(RandomSampling(), MLPHead(2), LoopConfig(batch_size=5, budget=20, seed_size=4))
    only_class_zero = np.flatnonzero(labels == 0)[:4]
    with pytest.raises(ValidationError, match=r"missing class\(es\) \[1\]"):
        loop.run(features, SimulatedOracle(labels), np.random.default_rng(0), seed_indices=only_class_zero)


@pytest.mark.parametrize("config, message", [
    (LoopConfig(batch_size=0, budget=20, seed_size=4), "batch_size"),
    (LoopConfig(batch_size=-5, budget=20, seed_size=4), "batch_size"),
    (LoopConfig(batch_size=5, budget=500, seed_size=4), "budget"),
    (LoopConfig(batch_size=5, budget=3, seed_size=4), "larger than the budget"),
])
def test_bad_loop_configuration_is_rejected_before_any_work(config, message):
    features, labels = make_blobs()
    loop = ActiveLearningLoop(RandomSampling(), MLPHead(2), config)
    with pytest.raises(ValidationError, match=message):
        loop.run(features, SimulatedOracle(labels), np.random.default_rng(0), seed_indices=[0, 1, 2, 3])


def test_nan_or_wrongly_shaped_features_are_rejected():
    features, labels = make_blobs()
    loop = ActiveLearningLoop(RandomSampling(), MLPHead(2), LoopConfig(batch_size=5, budget=20, seed_size=4))
    features[3, 2] = np.nan
    with pytest.raises(ValidationError, match="NaN"):
        loop.run(features, SimulatedOracle(labels), np.random.default_rng(0), seed_indices=[0, 1, 2, 3])
    with pytest.raises(ValidationError, match="2-D"):
        loop.run(features[:, 0], SimulatedOracle(labels), np.random.default_rng(0), seed_indices=[0, 1, 2, 3])


def test_seed_indices_outside_the_pool_are_rejected():
    features, labels = make_blobs()
    loop = ActiveLearningLoop(RandomSampling(), MLPHead(2), LoopConfig(batch_size=5, budget=20, seed_size=4))
    with pytest.raises(ValidationError, match="must lie in"):
        loop.run(features, SimulatedOracle(labels), np.random.default_rng(0), seed_indices=[0, 1, 2, 999])


class CharacterCountModel:
    """A model that consumes raw texts (like a fine-tuned transformer does): it turns each
    text into letter counts and trains an MLP head on them."""

    input_kind = "texts"

    def __init__(self):
        self.head = MLPHead(2, max_epochs=30)
        self.n_classes = 2
        self.seen_types = set()

    @staticmethod
    def _featurise(texts):
        return np.array([[text.count(c) for c in "abcdefghijklmnopqrstuvwxyz"] for text in texts], dtype=np.float32)

    def fit(self, texts, labels):
        self.seen_types.add(type(texts))
        return self.head.fit(self._featurise(texts), labels)

    def predict_proba(self, texts):
        self.seen_types.add(type(texts))
        return self.head.predict_proba(self._featurise(texts))

    def embed(self, texts):
        return self.head.embed(self._featurise(texts))

    def proba_from_embedding(self, embeddings):
        return self.head.proba_from_embedding(embeddings)


def test_a_model_that_consumes_texts_gets_texts_while_strategies_keep_the_features():
    rng = np.random.default_rng(0)
    texts = ["aaaa b" if i % 2 else "zzzz y" for i in range(60)]
    labels = np.arange(60) % 2
    features = rng.normal(size=(60, 4)).astype(np.float32)
    model = CharacterCountModel()
    spy = SpyStrategy()
    loop = ActiveLearningLoop(spy, model, LoopConfig(batch_size=5, budget=14, seed_size=4, checkpoints=()))
    records = loop.run(features, SimulatedOracle(labels), rng, seed_indices=[0, 1, 2, 3], inputs=texts)
    assert [r.n_labeled for r in records] == [4, 9, 14]
    assert model.seen_types == {list}
    state = spy.states[0]
    assert state.features is not None and state.features.shape == (60, 4)
    assert state.pool_probabilities.shape == (60, 2)
    np.testing.assert_array_equal(state.pool_probabilities, model.predict_proba(texts))


def test_inputs_of_the_wrong_length_are_rejected():
    features, labels = make_blobs()
    loop = ActiveLearningLoop(RandomSampling(), MLPHead(2), LoopConfig(batch_size=5, budget=20, seed_size=4))
    with pytest.raises(ValidationError, match="inputs has 3 entries"):
        loop.run(features, SimulatedOracle(labels), np.random.default_rng(0), seed_indices=[0, 1, 2, 3], inputs=["a", "b", "c"])
