"""The public Python API: ActiveLearner, next_batch and the scikit-learn adapter."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import make_pipeline
from sklearn.svm import LinearSVC

import anchoral
from anchoral import ActiveLearner, Selection, SklearnModel, ValidationError, next_batch
from anchoral.errors import AnchoralError
from anchoral.store import Project
from tests.conftest import make_blobs

TEXTS = [
    "a wonderful, moving film", "an utter waste of two hours", "brilliant acting and a clever plot",
    "dull, slow and predictable", "I loved every minute of it", "the worst movie I have seen this year",
    "charming and funny from start to finish", "boring characters and a silly ending",
    "a masterpiece of modern cinema", "painfully bad dialogue", "delightful and warm", "a tedious mess",
    "smart, sharp and beautifully shot", "I want my money back", "a joy to watch", "lifeless and dreary",
    "superb performances all round", "the plot makes no sense", "funny, touching and true", "awful in every way",
]
SENTIMENT = ["pos", "neg"] * 10


def seed_set(labels, per_class=3):
    return np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in np.unique(labels)])


@pytest.fixture
def pool():
    features, labels = make_blobs(n_per_class=60, n_features=8)
    return features, labels


def test_the_public_names_are_exported_from_anchoral():
    assert {"ActiveLearner", "SklearnModel", "next_batch", "Selection", "ValidationError"} <= set(anchoral.__all__)
    assert anchoral.ActiveLearner is ActiveLearner and "alvin" in anchoral.available_strategies()


def test_three_rounds_of_alvin_with_a_logistic_regression_over_features(pool):
    features, truth = pool
    learner = ActiveLearner(strategy="alvin", model=LogisticRegression(), encoder=None).set_pool(features)
    seed = seed_set(truth)
    learner.teach(seed, truth[seed])
    for _ in range(3):
        batch = learner.query(10)
        assert isinstance(batch, Selection) and batch.indices.shape == (10,)
        assert not np.isin(batch.indices, learner.labeled_indices_).any()
        assert batch.scores is not None and np.all(np.diff(batch.scores) <= 1e-9)
        assert "minority_indices" in batch.diagnostics and "candidate_set_size" in batch.diagnostics
        learner.teach(batch.indices, truth[batch.indices])
    assert learner.labeled_indices_.size == seed.size + 30
    assert isinstance(learner.model_, LogisticRegression) and hasattr(learner.model_, "coef_")
    assert learner.fit_report_.n_recorded_epochs >= 2 and learner.fit_report_.extra["dynamics"] == "max_iter replay"
    assert (learner.predict(features) == truth).mean() > 0.9
    assert learner.classes_ == [0, 1]


@pytest.mark.parametrize("model, params", [("mlp", {}), ("linear", {"head": "class-balanced"})])
def test_an_anchoral_model_by_name_with_its_parameters(pool, model, params):
    features, truth = pool
    learner = ActiveLearner(strategy="badge", model=model, model_params=params, encoder=None, labels=[0, 1])
    learner.set_pool(features).teach(seed_set(truth), truth[seed_set(truth)])
    batch = learner.query(5)
    assert batch.indices.size == 5 and learner.fit_report_.epochs >= 1
    assert learner.predict_proba(features[:3]).shape == (3, 2)


def test_string_labels_and_the_cold_start_before_every_label_has_two_examples(pool):
    features, truth = pool
    names = np.array(["cat", "dog"])[truth]
    learner = ActiveLearner(strategy="entropy", model=LogisticRegression(), encoder=None, labels=["cat", "dog"])
    learner.set_pool(features)
    first = learner.query(6)
    assert first.diagnostics["strategy"] == "cold-start-kmeans"
    assert "'cat' has 0" in first.diagnostics["fallbacks"][0]
    with pytest.raises(ValidationError, match="no model yet"):
        learner.model_
    learner.teach(first.indices, names[first.indices])
    seed = seed_set(truth, 2)
    learner.teach(np.setdiff1d(seed, first.indices), names[np.setdiff1d(seed, first.indices)])
    assert "strategy" not in learner.query(4).diagnostics
    assert set(learner.predict(features[:10])) <= {"cat", "dog"}


def test_a_sklearn_text_pipeline_works_for_probability_strategies_and_names_what_representation_strategies_need():
    labels = np.array(SENTIMENT)
    seed = [0, 1, 2, 3]
    text_model = make_pipeline(TfidfVectorizer(), LogisticRegression())
    learner = ActiveLearner(strategy="entropy", model=text_model, encoder=None).set_pool(TEXTS)
    learner.teach(seed, labels[seed])
    assert learner.query(3).indices.size == 3
    badge = ActiveLearner(strategy="badge", model=text_model, encoder=None).set_pool(TEXTS).teach(seed, labels[seed])
    with pytest.raises(ValidationError, match=r"^strategy 'badge' needs a representation .*pass embed="):
        badge.query(3)
    vectorizer = TfidfVectorizer().fit(TEXTS)
    embedded = ActiveLearner(strategy="badge", model=text_model, encoder=None,
                             embed=lambda texts: vectorizer.transform(texts).toarray())
    embedded.set_pool(TEXTS).teach(seed, labels[seed])
    assert embedded.query(3).indices.size == 3
    # A pipeline's classifier has max_iter, so ALVIN gets its training dynamics.
    assert badge.fit_report_.n_recorded_epochs >= 2


def test_alvin_with_a_classifier_that_has_no_training_dynamics_says_what_to_do(pool):
    features, truth = pool
    seed = seed_set(truth)
    learner = ActiveLearner(strategy="alvin", model=GaussianNB(), encoder=None).set_pool(features).teach(seed, truth[seed])
    with pytest.raises(ValidationError, match=r"strategy 'alvin' .*GaussianNB has no max_iter .*'out-of-fold'"):
        learner.query(5)
    other = ActiveLearner(strategy="alvin", model=GaussianNB(), encoder=None, strategy_params={"minority": "out-of-fold"})
    assert other.set_pool(features).teach(seed, truth[seed]).query(5).indices.size == 5


def test_a_classifier_without_predict_proba_is_refused_up_front():
    with pytest.raises(ValidationError, match="LinearSVC has no predict_proba"):
        ActiveLearner(model=LinearSVC())
    with pytest.raises(ValidationError, match="model must be"):
        ActiveLearner(model=object())


def test_the_adapter_places_probabilities_at_the_classes_it_saw():
    features, truth = make_blobs(n_per_class=20, n_classes=3)
    model = SklearnModel(LogisticRegression(), 3)
    seen = truth != 2
    model.fit(features[seen], truth[seen])
    probabilities = model.predict_proba(features)
    assert probabilities.shape == (60, 3) and np.all(probabilities[:, 2] == 0)
    assert np.array_equal(model.embed(features), features)
    assert np.allclose(model.proba_from_embedding(features), probabilities)


@pytest.mark.parametrize("call, message", [
    (lambda l: l.teach([0, 1], [0]), "labels has 1 entries and indices 2"),
    (lambda l: l.teach([5000], [0]), r"indices must lie in \[0, 120\)"),
    (lambda l: l.teach([-1], [0]), r"indices must lie in \[0, 120\)"),
    (lambda l: l.teach([7, 7], [0, 0]), "indices repeats 7"),
    (lambda l: l.teach([1.5], [0]), "integer pool positions"),
    (lambda l: l.teach([100], ["bird"]), r"label 'bird' is not in the label set \[0, 1\]"),
    (lambda l: l.teach([l.labeled_indices_[0]], [0]), "is already labeled"),
    (lambda l: l.query(500), "n=500 exceeds the 114 unlabeled examples"),
    (lambda l: l.query(0), "n must be a positive integer"),
    (lambda l: l.predict(np.zeros((2, 5))), "X has 5 features per example; the pool has 8"),
    (lambda l: l.predict(np.full((2, 8), np.nan)), "NaN"),
    (lambda l: l.set_pool(np.zeros((3, 8))), "already has labels"),
])
def test_bad_input_is_one_clear_line_and_changes_nothing(pool, call, message):
    features, truth = pool
    learner = ActiveLearner(strategy="entropy", model=LogisticRegression(), encoder=None, labels=[0, 1]).set_pool(features)
    seed = seed_set(truth)
    learner.teach(seed, truth[seed])
    before = (learner.labeled_indices_.copy(), list(learner.labeled_labels_))
    with pytest.raises(ValidationError, match=message) as caught:
        call(learner)
    assert "\n" not in str(caught.value)
    assert np.array_equal(learner.labeled_indices_, before[0]) and learner.labeled_labels_ == before[1]


@pytest.mark.parametrize("kwargs, message", [
    ({"strategy": "alvn"}, "unknown strategy 'alvn'; expected one of: alfamix, alvin"),
    ({"model": "xgboost"}, "unknown model 'xgboost'"),
    ({"model": "mlp", "model_params": {"depth": 3}}, "invalid parameters for model 'mlp'"),
    ({"encoder": "bert"}, "unknown encoder 'bert'"),
    ({"labels": ["a"]}, "at least two classes"),
    ({"labels": ["a", "a"]}, "repeats 'a'"),
    ({"seed": -1}, "seed must be a non-negative integer"),
    ({"embed": lambda x: x}, "embed= is for a scikit-learn classifier"),
])
def test_bad_constructor_arguments_are_named(kwargs, message):
    with pytest.raises(ValidationError, match=message):
        ActiveLearner(**kwargs)


def test_bad_pools_are_named():
    learner = ActiveLearner(encoder=None)
    for bad, message in [("one text", "single str"), ([[1.0, np.nan]], "NaN"), (np.zeros((0, 3)), "empty"),
                         (["a", 3], "mixes texts"), (["fine", " "], "empty text at row 1"),
                         (pd.DataFrame({"t": ["a"]}), "exactly one of text_column= or feature_columns=; its columns: t")]:
        with pytest.raises(ValidationError, match=message):
            learner.set_pool(bad)
    with pytest.raises(ValidationError, match="reads features and the pool is texts"):
        learner.set_pool(["some", "texts"])
    with pytest.raises(ValidationError, match="text_column='text' is not a column of the DataFrame; its columns: t"):
        ActiveLearner(encoder="hashing").set_pool(pd.DataFrame({"t": ["a"]}), text_column="text")
    with pytest.raises(ValidationError, match="no pool yet"):
        learner.query(1)


def test_a_dataframe_pool_by_text_column_or_feature_columns(pool):
    features, truth = pool
    frame = pd.DataFrame(features, columns=[f"f{i}" for i in range(8)]).assign(
        id=[f"row-{i}" for i in range(len(truth))])
    learner = ActiveLearner(strategy="coreset", model=LogisticRegression(), encoder=None)
    learner.set_pool(frame, feature_columns=[f"f{i}" for i in range(8)], id_column="id")
    assert np.array_equal(learner.features_, features) and learner.ids_[3] == "row-3"
    seed = seed_set(truth)
    assert learner.teach(seed, truth[seed]).query(4).indices.size == 4
    texts = pd.DataFrame({"review": TEXTS, "stars": range(20)})
    by_text = ActiveLearner(strategy="entropy", model=LogisticRegression(), encoder="hashing").set_pool(texts, text_column="review")
    assert by_text.texts_ == TEXTS and by_text.features_.shape[0] == 20
    by_text.teach([0, 1, 2, 3], ["pos", "neg", "pos", "neg"])
    assert by_text.predict(pd.DataFrame({"review": ["a joy"]}), text_column="review").shape == (1,)


def test_a_hugging_face_dataset_pool():
    import datasets  # the test setup installs the "hf" extra
    dataset = datasets.Dataset.from_dict({"text": TEXTS, "label": SENTIMENT})
    learner = ActiveLearner(strategy="entropy", model=LogisticRegression(), encoder="hashing").set_pool(dataset, text_column="text")
    learner.teach([0, 1, 2, 3], dataset["label"][:4])
    assert learner.query(2).indices.size == 2


def test_next_batch_from_probabilities_alone_ranks_by_the_strategys_score():
    probabilities = np.array([[0.9, 0.1], [0.5, 0.5], [0.6, 0.4], [0.99, 0.01], [0.2, 0.8]])
    batch = next_batch("entropy", 2, labeled_indices=[0], labels=[0], probabilities=probabilities)
    assert batch.indices.tolist() == [1, 2] and batch.scores[0] == pytest.approx(np.log(2))
    for strategy, needs in [("badge", "a representation"), ("alfamix", "a representation"), ("bert-km", "pretrained features"),
                            ("alvin", "training dynamics")]:
        with pytest.raises(ValidationError, match=f"strategy '{strategy}'.*{needs}"):
            next_batch(strategy, 2, labeled_indices=[0, 4], labels=[0, 1], probabilities=probabilities)


def test_next_batch_fits_the_given_model_on_the_features(pool):
    features, truth = pool
    seed = seed_set(truth)
    for strategy in ("alvin", "badge", "cal", "alfamix", "bert-km", "minority-seeking"):
        batch = next_batch(strategy, 5, labeled_indices=seed, labels=truth[seed], features=features,
                           model=LogisticRegression(), seed=1)
        assert batch.indices.size == 5 and not np.isin(batch.indices, seed).any()
    repeat = next_batch("alvin", 5, labeled_indices=seed, labels=truth[seed], features=features, model=LogisticRegression(), seed=1)
    assert np.array_equal(repeat.indices, batch.indices if strategy == "alvin" else repeat.indices)
    with pytest.raises(ValidationError, match="labels has 2 entries; expected 6"):
        next_batch("entropy", 5, labeled_indices=seed, labels=[0, 1], features=features, model=LogisticRegression())
    with pytest.raises(ValidationError, match="n=500 exceeds the 114 unlabeled"):
        next_batch("entropy", 500, labeled_indices=seed, labels=truth[seed], features=features, model=LogisticRegression())
    with pytest.raises(ValidationError, match="pass the pool's features= or probabilities="):
        next_batch("entropy", 5, labeled_indices=seed, labels=truth[seed])


@pytest.mark.real_data
def test_save_and_reopen_through_the_project_store_shared_with_the_web_app(tmp_path):
    labels = np.array(SENTIMENT)
    learner = ActiveLearner(strategy="entropy", model="mlp", labels=["neg", "pos"], seed=3).set_pool(TEXTS)
    learner.teach([0, 1, 2, 3], labels[:4])
    first = learner.query(4)
    learner.save(tmp_path / "project")
    with Project.open(tmp_path / "project") as project:
        assert project.labels == ("neg", "pos") and project.label_counts() == {"neg": 2, "pos": 2}
        assert [item.position for item in project.batch()] == first.indices.tolist()
        assert project.history("1")[0].annotator == "api"
        assert project.settings["strategy"] == "entropy" and project.settings["seed"] == 3
        # An annotator labels the batch in the web app.
        project.set_labels([(int(i), int(labels[i] == "pos")) for i in first.indices], annotator="ann", source="web")
    assert sorted(learner.labeled_indices_.tolist()) == sorted([0, 1, 2, 3, *first.indices.tolist()])
    second = learner.query(4)
    learner.teach(second.indices[:2], labels[second.indices[:2]])
    learner.close()
    with ActiveLearner.open(tmp_path / "project") as reopened:
        assert reopened.strategy_name == "entropy" and reopened.seed == 3 and reopened.classes_ == ["neg", "pos"]
        assert reopened.labeled_indices_.size == 10 and reopened.texts_ == TEXTS
        assert [r.round for r in reopened.project_.rounds()] == [1, 2]
        with pytest.raises(ValidationError, match="label 'meh' is not in the label set"):
            reopened.teach([19], ["meh"])
        assert reopened.labeled_indices_.size == 10
    with pytest.raises(AnchoralError, match="already an anchoral project"):
        ActiveLearner(labels=["neg", "pos"]).set_pool(TEXTS).save(tmp_path / "project")


@pytest.mark.real_data
def test_a_project_saved_with_a_sklearn_model_needs_it_again_to_reopen(tmp_path):
    learner = ActiveLearner(strategy="entropy", model=LogisticRegression(), labels=["neg", "pos"]).set_pool(TEXTS)
    learner.teach([0, 1, 2, 3], SENTIMENT[:4]).save(tmp_path / "p").close()
    with pytest.raises(ValidationError, match="saved with the model LogisticRegression"):
        ActiveLearner.open(tmp_path / "p")
    with ActiveLearner.open(tmp_path / "p", model=LogisticRegression()) as reopened:
        assert isinstance(reopened.model_, LogisticRegression) and reopened.query(2).indices.size == 2
    with pytest.raises(ValidationError, match="holds texts"):
        ActiveLearner(encoder=None).set_pool(np.eye(3)).save(tmp_path / "q")
    assert not (tmp_path / "q").exists()


@pytest.mark.real_data
def test_the_learner_and_anchoral_query_pick_the_same_batch_from_the_same_project(tmp_path):
    from anchoral.store.rounds import run_round

    labels = np.array(SENTIMENT)
    learner = ActiveLearner(strategy="entropy", model="mlp", labels=["neg", "pos"]).set_pool(TEXTS)
    learner.teach(list(range(6)), labels[:6]).save(tmp_path / "a").close()
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    with ActiveLearner.open(tmp_path / "a") as notebook:
        from_python = notebook.query(5)
    with Project.open(tmp_path / "b") as project:
        from_cli = run_round(project, n=5)
        ids = project.ids()
    assert from_cli.selected_ids == [ids[int(i)] for i in from_python.indices]


@pytest.mark.real_data
def test_alvin_with_minilm_features_and_a_logistic_regression_on_real_reviews():
    from anchoral.data.registry import load_dataset

    frame = load_dataset("vader-movie").sample(400, random_state=0).reset_index(drop=True)
    pool, held = frame.iloc[:300], frame.iloc[300:]
    truth = pool["label"].to_numpy()
    learner = ActiveLearner(strategy="alvin", model=LogisticRegression(C=10, max_iter=200), seed=0)
    learner.set_pool(pool, text_column="text", id_column="id")
    seed = seed_set(truth, 5)
    learner.teach(seed, truth[seed])
    minority = []
    for _ in range(3):
        batch = learner.query(20)
        minority.append(sum(map(len, batch.diagnostics["minority_indices"].values())))
        learner.teach(batch.indices, truth[batch.indices])
    assert learner.labeled_indices_.size == 70 and learner.features_.shape == (300, 384)
    # MiniLM features of movie snippets with 70 labels: a plain logistic regression on 70
    # random labels of this sample scores about 0.66 on the 100 held-out reviews.
    accuracy = (learner.predict(held, text_column="text") == held["label"].to_numpy()).mean()
    assert accuracy > 0.6
    assert sum(minority) > 0, "the max_iter replay should mark some labeled reviews as forgotten or never learned"
