"""One round, three callers: ``anchoral.ActiveLearner.query``, a labeling project's
``run_round`` and the simulated ``ActiveLearningLoop`` all run ``anchoral.loop.fit_and_select``,
so the same labels, model, seed and random generator give the same batch from each.

A project and the API seed a round's generator with ``(seed, round)``; the simulated loop
threads the one generator it is given through its rounds. So each comparison gives the loop
``np.random.default_rng([seed, round])`` and the labeled set of that round, and runs it for
exactly one selection. The pool is texts through the store tests' hashing encoder (what
projects embed with in every store test) or, marked real_data, VADER sentences through MiniLM.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from anchoral import ActiveLearner
from anchoral.loop import (
    COLD_START,
    ActiveLearningLoop,
    LoopConfig,
    SimulatedOracle,
    fallback_record,
    fit_and_select,
)
from anchoral.models import make_model
from anchoral.store.create import DataSpec, init_project
from anchoral.store.exchange import LabelRow, import_labels
from anchoral.store.rounds import run_round
from anchoral.strategies import EntropySampling, Selection, make_strategy
from tests.conftest import make_blobs
from tests.store.fakes import HashingEncoder, write_pool

LABELS = ["positive", "negative"]
SEED = 4
BATCH = 7
FIRST_LABELED = [5, 0, 12, 3, 8, 1, 17, 22]  # not in pool order: the labeling order reaches the strategy
MISLABELED = [12, 3]
"""Labeled the other way, as a hurried annotator might: learned late or never, they are the
minority ALVIN interpolates from (the synthetic classes are otherwise learned at once)."""


class ThreeCallers:
    """The same pool and labels behind the Python API, a labeling project and the simulated loop."""

    def __init__(self, tmp_path, texts, ids, truth, strategy, encoder, encode):
        self.texts, self.ids, self.truth, self.strategy = texts, ids, np.asarray(truth), strategy
        self.features = encode(texts)
        self.learner = ActiveLearner(strategy=strategy, model="mlp", encoder=encoder, labels=LABELS, seed=SEED)
        self.learner.set_pool(texts, ids=ids)
        frame_path = tmp_path / "pool.csv"
        pd.DataFrame({"id": ids, "text": texts}).to_csv(frame_path, index=False)
        self.project = init_project(tmp_path / "project", DataSpec(frame_path, "text", "id"), LABELS,
                                    strategy=strategy, batch_size=BATCH, seed=SEED)
        self.encoder = encoder
        self.labeled: list[int] = []

    def label(self, positions) -> None:
        """Give ``positions`` their true labels in the project (an import) and the learner (teach)."""
        positions = [int(p) for p in positions]
        rows = [LabelRow(f"row {k}", self.ids[p], LABELS[self.truth[p]]) for k, p in enumerate(positions, start=1)]
        import_labels(self.project, rows, annotator="ann", source="import")
        self.learner.teach(positions, [LABELS[self.truth[p]] for p in positions])
        self.labeled += positions

    def from_project(self) -> np.ndarray:
        result = run_round(self.project, encoder=self.encoder)
        assert [item.position for item in self.project.batch()] == [self.ids.index(i) for i in result.selected_ids]
        return np.array([self.ids.index(i) for i in result.selected_ids])

    def from_loop(self, round_number: int) -> tuple[np.ndarray, np.ndarray | None]:
        labeled = np.array(self.labeled)
        loop = ActiveLearningLoop(make_strategy(self.strategy), make_model("mlp", 2, seed=SEED),
                                  LoopConfig(batch_size=BATCH, budget=labeled.size + BATCH, seed_size=labeled.size,
                                             checkpoints=()))
        records = loop.run(self.features, SimulatedOracle(self.truth), np.random.default_rng([SEED, round_number]),
                           seed_indices=labeled)
        assert [r.selected.size for r in records] == [BATCH, 0]  # one selection, then the last fit
        return records[0].selected, records[0].selection_scores

    def close(self):
        self.project.close()


def synthetic_callers(tmp_path, strategy) -> ThreeCallers:
    frame = write_pool(tmp_path / "source.csv", 80)
    truth = [LABELS.index(t) for t in frame["truth"]]
    for position in MISLABELED:
        truth[position] = 1 - truth[position]
    encoder = HashingEncoder()
    return ThreeCallers(tmp_path, list(frame["text"]), list(frame["id"]), truth, strategy, encoder, encoder.encode)


@pytest.mark.parametrize("strategy", ["entropy", "alvin", "badge"])
def test_the_api_a_project_and_the_simulated_loop_pick_the_same_batch_round_after_round(tmp_path, strategy):
    callers = synthetic_callers(tmp_path, strategy)
    try:
        callers.label(FIRST_LABELED)
        anchors = 0
        for round_number in (1, 2):
            from_api = callers.learner.query(BATCH)
            from_project = callers.from_project()
            from_loop, loop_scores = callers.from_loop(round_number)
            assert from_api.indices.tolist() == from_project.tolist() == from_loop.tolist(), f"round {round_number}"
            if from_api.scores is None:  # BADGE's k-means++ seeding scores nothing
                assert loop_scores is None
            else:
                np.testing.assert_allclose(from_api.scores, loop_scores, rtol=1e-6)
            assert not np.isin(from_api.indices, callers.labeled).any()
            anchors += from_api.diagnostics.get("n_anchors", 0)
            callers.label(from_api.indices)
        assert callers.project.latest_round().requested_strategy == strategy
        assert strategy != "alvin" or anchors > 0, "ALVIN's anchors are random draws: the generators must agree"
    finally:
        callers.close()


def test_a_project_and_the_api_make_the_same_cold_start_and_say_the_same(tmp_path):
    callers = synthetic_callers(tmp_path, "alvin")
    try:
        callers.label([0, 2, 4])  # classes alternate: three 'positive', no 'negative'
        from_api = callers.learner.query(BATCH)
        result = run_round(callers.project, encoder=callers.encoder)
        assert result.strategy == from_api.diagnostics["strategy"] == COLD_START
        assert [callers.ids.index(i) for i in result.selected_ids] == from_api.indices.tolist()
        note = ("training needs at least 2 labeled examples of every label; 'negative' has 0: "
                "selected by cold-start-kmeans (diverse items) instead of alvin")
        assert result.fallback == from_api.diagnostics["fallbacks"][0] == note
        assert callers.project.latest_round().metrics["fallback"] == note
        assert "fit_seconds" not in result.timings and from_api.scores is None
    finally:
        callers.close()


def test_a_round_that_cannot_train_builds_no_model_and_records_why():
    features, labels = make_blobs(n_per_class=20)

    def no_model():
        raise AssertionError("a cold start must not build a model")

    outcome = fit_and_select(EntropySampling(), no_model, np.array([0, 1]), labels[[0, 1]] * 0, 5,
                             np.random.default_rng(0), features=features, class_names=["a", "b"])
    assert outcome.fitted is None and outcome.strategy == COLD_START and outcome.selection.indices.size == 5
    assert outcome.cold_start.startswith("training needs at least 2 labeled examples of every label; 'b' has 0: ")
    assert outcome.fallback_record() == {"fallback": outcome.cold_start}
    texts_only = fit_and_select(EntropySampling(), no_model, np.array([0]), np.array([0]), 3, np.random.default_rng(0),
                                features=None, inputs=[f"text {i}" for i in range(10)], class_names=["a", "b"])
    assert texts_only.strategy == "random" and "selected by random instead of entropy" in texts_only.cold_start


def test_a_round_of_size_zero_fits_and_evaluates_only():
    features, labels = make_blobs(n_per_class=20)
    seen = []
    outcome = fit_and_select(EntropySampling(), lambda: make_model("mlp", 2, seed=0), np.arange(6), labels[:6], 0,
                             np.random.default_rng(0), features=features, class_names=[0, 1], min_labels_per_class=1,
                             evaluate=lambda fitted: seen.append(fitted) or {"evaluated": True})
    assert outcome.selection is None and outcome.metrics == {"evaluated": True} and seen == [outcome.fitted]
    assert outcome.fitted.fit_report.correctness.shape[1] == 6 and outcome.fallback_record() == {}


def test_fallbacks_are_recorded_as_the_fallback_or_as_the_strategys_own():
    assert fallback_record("alvin", COLD_START, {"fallbacks": ["why"]}) == {"fallback": "why"}
    assert fallback_record("alvin", "alvin", {"fallbacks": ["no minority found"]}) == {"strategy_fallbacks": ["no minority found"]}
    assert fallback_record("entropy", "entropy", Selection(np.arange(2)).diagnostics) == {}


@pytest.mark.real_data
@pytest.mark.parametrize("strategy", ["entropy", "alvin"])
def test_on_vader_sentences_with_minilm_the_three_callers_pick_the_same_batch(tmp_path, strategy):
    from anchoral.encoders import MiniLMEncoder, default_cache
    from tests.store.vader_data import vader_sample

    pool, _ = vader_sample()
    truth = [LABELS.index(s) for s in pool["sentiment"]]
    encoder = MiniLMEncoder()
    callers = ThreeCallers(tmp_path, list(pool["text"]), [str(i) for i in pool["id"]], truth, strategy, encoder,
                           lambda texts: np.asarray(default_cache().encode(encoder, texts, progress=False)))
    try:
        # 30 of each class: with fewer the MLP learns every one at once, ALVIN finds no minority
        # and falls back to entropy, which draws nothing from the generator.
        first = [int(i) for c in (0, 1) for i in np.flatnonzero(np.asarray(truth) == c)[:30]]
        callers.label(first)
        from_api = callers.learner.query(BATCH)
        from_loop, _ = callers.from_loop(1)
        assert from_api.indices.tolist() == callers.from_project().tolist() == from_loop.tolist()
        assert strategy != "alvin" or from_api.diagnostics["n_anchors"] > 0
    finally:
        callers.close()
