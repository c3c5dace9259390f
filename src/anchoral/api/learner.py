"""``ActiveLearner``: a pool-based session (pool -> teach -> query -> teach ...), optionally
kept in a labeling project's SQLite file so a notebook and ``anchoral serve`` share it.

A query is ``anchoral.loop.fit_and_select``, the round a labeling project and the
simulated loop run too: fit on every label (from the same initial weights), build a
RoundState, select; until every label has two examples the batch is the cold start
(k-means centres of the unlabeled pool), recorded in the selection's diagnostics. The
selection's random generator is ``np.random.default_rng([seed, round])``, as in a
project, so the same labels, seed and round give the same batch here and from
``anchoral query``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from anchoral.api.classifiers import SklearnModel, is_sklearn_classifier
from anchoral.api.inputs import Inputs, read_inputs
from anchoral.api.selection import (
    build_model,
    check_model_argument,
    check_new_indices,
    needs_pretrained_features,
    resolve_strategy,
    select,
)
from anchoral.errors import ValidationError
from anchoral.loop import FittedModel, fallback_record, fit_and_select, fit_labeled, label_counts, training_problem
from anchoral.models.base import FitReport
from anchoral.strategies import RoundState, Selection, Strategy
from anchoral.validation import check_positive_int

ANNOTATOR = "api"
"""Annotator and source recorded for labels taught from Python."""


def _sorted_labels(values) -> list:
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=str)


def _as_list(values, name: str) -> list:
    if isinstance(values, (str, bytes)):
        raise ValidationError(f"{name} must be a sequence; got a single {type(values).__name__} (wrap it in a list)")
    if hasattr(values, "tolist"):
        values = values.tolist()
    try:
        return list(values)
    except TypeError:
        raise ValidationError(f"{name} must be a sequence; got {type(values).__name__}") from None


class ActiveLearner:
    """Pool-based active learning in a few calls, in the style of modAL and scikit-learn.

    >>> learner = ActiveLearner(strategy="alvin", model=LogisticRegression(), labels=["neg", "pos"])
    >>> learner.set_pool(texts)                 # or a feature matrix, a DataFrame, a Dataset
    >>> learner.teach([0, 7, 9, 12], ["neg", "pos", "pos", "neg"])
    >>> batch = learner.query(20)               # batch.indices, batch.scores, batch.diagnostics
    >>> learner.teach(batch.indices, answers)

    Parameters
    ----------
    strategy : str or Strategy, default "alvin"
        A name from ``anchoral strategies`` (parameters in ``strategy_params``) or a built Strategy.
    model : str, anchoral Model or scikit-learn classifier, default "mlp"
        ``"mlp"``, ``"linear"``, ``"finetune"`` (parameters in ``model_params``, e.g.
        ``{"head": "dfr"}`` for a group-robust head), a Model instance, or any classifier
        with ``predict_proba`` (see ``SklearnModel`` for what it offers each strategy).
    encoder : str, Encoder or None, default "minilm"
        Turns a pool of texts into features (cached on disk, shared with labeling projects).
        With ``None`` a pool of texts goes to the model as texts (a fine-tuned transformer,
        or a scikit-learn text pipeline).
    labels : sequence, optional
        The label set, in class-id order. Default: the distinct labels taught so far, sorted.
    embed : callable, optional
        With a scikit-learn classifier: the representation strategies use (default: its
        input features).
    strategy_params, model_params : dict, optional
    seed : int, default 0
        Seed of the selection (and of a named model's initial weights).

    Attributes (after ``set_pool``)
    -------------------------------
    features_ : (N, d) pool features; ``texts_`` and ``ids_`` of the pool.
    labeled_indices_, labeled_labels_, unlabeled_indices_ : the labeled set, as taught.
    classes_ : the label set, in class-id order.
    model_ : the model fitted on every label (the fitted scikit-learn classifier for one).
    fit_report_ : that fit's FitReport (loss curve, per-epoch correctness).
    """

    def __init__(self, strategy="alvin", model="mlp", encoder="minilm", *, labels=None, embed=None,
                 strategy_params: Mapping | None = None, model_params: Mapping | None = None, seed: int = 0):
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValidationError(f"seed must be a non-negative integer; got {seed!r}")
        self.strategy = strategy
        self.model = model
        self.encoder = encoder
        self.labels = None if labels is None else _as_list(labels, "labels")
        self.embed = embed
        self.strategy_params = dict(strategy_params or {})
        self.model_params = dict(model_params or {})
        self.seed = int(seed)
        self._strategy = resolve_strategy(strategy, self.strategy_params)
        check_model_argument(model, self.model_params, embed)
        self._check_encoder(encoder)
        self._label_values: list = []
        if self.labels is not None:
            self._label_values = self._check_label_set(self.labels)
        self._encoder_object = None
        self._pool: Inputs | None = None
        self.features_: np.ndarray | None = None
        self.ids_: list[str] | None = None
        self._positions = np.empty(0, dtype=np.int64)
        self._classes = np.empty(0, dtype=np.int64)
        self._fit: FittedModel | None = None
        self._project = None
        self._history: list[tuple[str, int, int, Selection]] = []

    # -- checks --------------------------------------------------------------------
    @staticmethod
    def _check_encoder(encoder) -> None:
        if encoder is None or (hasattr(encoder, "encode") and hasattr(encoder, "fingerprint")):
            return
        if not isinstance(encoder, str):
            raise ValidationError(f"encoder must be an encoder name (e.g. 'minilm'), an Encoder or None; got {type(encoder).__name__}")
        from anchoral.encoders.registry import encoder_class

        encoder_class(encoder)

    @staticmethod
    def _check_label_set(labels: list) -> list:
        if len(labels) < 2:
            raise ValidationError(f"labels must name at least two classes; got {labels}")
        names = [str(label).strip() for label in labels]
        if any(not name for name in names):
            raise ValidationError(f"labels must not contain an empty name; got {labels}")
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValidationError(f"labels repeats {', '.join(map(repr, repeated))}; each label must be named once")
        return list(labels)

    def _require_pool(self) -> Inputs:
        if self._pool is None:
            raise ValidationError("the learner has no pool yet; call set_pool(texts or features) first")
        return self._pool

    # -- the pool ------------------------------------------------------------------
    def set_pool(self, pool, *, text_column: str | None = None, feature_columns=None, id_column: str | None = None,
                 ids=None) -> ActiveLearner:
        """Set the unlabeled pool: a feature matrix, a list of texts, a pandas DataFrame or a
        ``datasets.Dataset`` (name ``text_column`` or ``feature_columns``; ``id_column`` or
        ``ids`` name the examples, default "1".."N"). Texts are encoded now (cached on disk)."""
        if self._project is not None:
            raise ValidationError("this learner is bound to a project, whose pool is fixed; open another project instead")
        if self._positions.size:
            raise ValidationError("the learner already has labels for its pool; make a new ActiveLearner for another pool")
        inputs = read_inputs(pool, text_column=text_column, feature_columns=feature_columns, id_column=id_column, ids=ids)
        self._use_pool(inputs)
        return self

    def _use_pool(self, inputs: Inputs) -> None:
        if inputs.texts is None and self._model_input_kind() == "texts":
            raise ValidationError(f"model {self._model_name()} reads texts, and the pool is a feature matrix; "
                                  "pass the pool's texts")
        features = inputs.features
        if inputs.texts is not None and self.encoder is not None:
            features = self._encode(inputs.texts)
        elif inputs.texts is not None and not self._reads_texts(inputs):
            raise ValidationError(
                f"model {self._model_name()} reads features and the pool is texts; pass encoder='minilm' (the "
                "default) to encode them, or a feature matrix"
            )
        self._pool = inputs
        self.features_ = features
        self.ids_ = list(inputs.ids) if inputs.ids is not None else [str(i + 1) for i in range(len(inputs))]
        self._fit = None

    def _model_name(self) -> str:
        return repr(self.model) if isinstance(self.model, str) else type(self.model).__name__

    def _model_input_kind(self) -> str | None:
        """What an anchoral model reads ("features" or "texts"); None for a scikit-learn
        classifier, which reads what it is given."""
        if isinstance(self.model, str):
            from anchoral.models import MODELS

            return getattr(MODELS[self.model], "input_kind", "features")
        if is_sklearn_classifier(self.model):
            return None
        return getattr(self.model, "input_kind", "features")

    def _reads_texts(self, inputs: Inputs) -> bool:
        """Whether the model consumes the pool's texts (not features): an anchoral model that
        reads texts, or a scikit-learn classifier given a pool of texts and no encoder."""
        if inputs.texts is None:
            return False
        kind = self._model_input_kind()
        return self.encoder is None if kind is None else kind == "texts"

    def _encode(self, texts: list[str]) -> np.ndarray:
        from anchoral.store.rounds import embed

        if self._encoder_object is None:
            if isinstance(self.encoder, str):
                from anchoral.encoders import make_encoder

                self._encoder_object = make_encoder(self.encoder)
            else:
                self._encoder_object = self.encoder
        return np.asarray(embed(texts, self._encoder_object))

    @property
    def pool_size(self) -> int:
        return len(self._require_pool())

    @property
    def texts_(self) -> list[str] | None:
        return None if self._pool is None else self._pool.texts

    # -- labels --------------------------------------------------------------------
    def _sync(self) -> None:
        """Read the labels of a bound project (the web app or an import may have added some)."""
        if self._project is None:
            return
        positions, classes, _ = self._project.current_labels()
        if not (np.array_equal(positions, self._positions) and np.array_equal(classes, self._classes)):
            self._positions, self._classes, self._fit = positions, classes, None

    @property
    def classes_(self) -> list:
        return list(self._label_values)

    @property
    def labeled_indices_(self) -> np.ndarray:
        self._sync()
        return self._positions.copy()

    @property
    def labeled_labels_(self) -> list:
        self._sync()
        return [self._label_values[int(c)] for c in self._classes]

    @property
    def unlabeled_indices_(self) -> np.ndarray:
        self._sync()
        mask = np.ones(self.pool_size, dtype=bool)
        mask[self._positions] = False
        return np.flatnonzero(mask)

    def _class_ids(self, values: list) -> np.ndarray:
        """Class ids of label ``values``; an undeclared label grows an inferred label set, else is an error."""
        declared = self.labels is not None or self._project is not None
        known = list(self._label_values)
        new = [value for value in dict.fromkeys(values) if value not in known]
        if new and declared:
            raise ValidationError(
                f"label {new[0]!r} is not in the label set [{', '.join(map(str, known))}]"
            )
        if new:
            old_values = [known[int(c)] for c in self._classes]
            self._label_values = _sorted_labels(known + new)
            self._classes = np.asarray([self._label_values.index(v) for v in old_values], dtype=np.int64)
        return np.asarray([self._label_values.index(v) for v in values], dtype=np.int64)

    def teach(self, indices, labels) -> ActiveLearner:
        """Add labels: ``labels[i]`` is the label of pool example ``indices[i]``. Then the model
        is refitted on every label (once every label has two examples). Nothing is stored
        unless every index and label is valid."""
        self._sync()
        pool_size = self.pool_size
        positions = check_new_indices(indices, pool_size, "indices")
        values = _as_list(labels, "labels")
        if len(values) != positions.size:
            raise ValidationError(f"labels has {len(values)} entries and indices {positions.size}; expected one label per index")
        if positions.size == 0:
            raise ValidationError("indices is empty; pass at least one example to label")
        already = positions[np.isin(positions, self._positions)]
        if already.size:
            raise ValidationError(
                f"index {int(already[0])} is already labeled ({already.size} of the indices are); each example is taught once"
            )
        saved = (list(self._label_values), self._classes.copy())
        try:
            classes = self._class_ids(values)
        except ValidationError:
            self._label_values, self._classes = saved
            raise
        if self._project is not None:
            self._project.set_labels([(int(p), int(c)) for p, c in zip(positions, classes)],
                                     annotator=ANNOTATOR, source=ANNOTATOR)
            self._sync()
        else:
            self._positions = np.concatenate([self._positions, positions])
            self._classes = np.concatenate([self._classes, classes])
            self._fit = None
        if self._coverage_problem() is None:
            self._fitted()
        return self

    def _coverage_problem(self) -> str | None:
        return training_problem(self._label_values, self._classes)

    # -- the model -----------------------------------------------------------------
    def _texts_for_model(self) -> list[str] | None:
        """The pool's texts when the model reads them; None when it reads ``features_``."""
        pool = self._require_pool()
        return pool.texts if self._reads_texts(pool) else None

    def _new_model(self):
        """The model to fit, from the same initial weights every time (see ``build_model``)."""
        reads_texts = self._texts_for_model() is not None
        return build_model(self.model, len(self._label_values), seed=self.seed, model_params=self.model_params,
                           embed=self.embed, input_kind="texts" if reads_texts else "features")

    def _fitted(self) -> FittedModel:
        self._sync()
        problem = self._coverage_problem()
        if problem:
            raise ValidationError(f"no model yet: {problem}")
        if self._fit is None:
            self._fit = fit_labeled(self._new_model, self._positions, self._classes, features=self.features_,
                                    inputs=self._texts_for_model())
        return self._fit

    @property
    def model_(self):
        model = self._fitted().model
        return model.estimator_ if isinstance(model, SklearnModel) else model

    @property
    def fit_report_(self) -> FitReport:
        return self._fitted().fit_report

    def _new_inputs(self, X, text_column, feature_columns):
        inputs = read_inputs(X, text_column=text_column, feature_columns=feature_columns, name="X")
        if self._reads_texts(self._require_pool()):
            if inputs.texts is None:
                raise ValidationError("the model reads texts; X must be texts like the pool")
            return inputs.texts
        features = inputs.features
        if inputs.texts is not None:
            if self.encoder is None:
                raise ValidationError("X is texts but the learner has no encoder; pass features like the pool's")
            features = self._encode(inputs.texts)
        width = self.features_.shape[1]
        if features.shape[1] != width:
            raise ValidationError(f"X has {features.shape[1]} features per example; the pool has {width}")
        return features

    def predict_proba(self, X, *, text_column: str | None = None, feature_columns=None) -> np.ndarray:
        """Class probabilities (columns in ``classes_`` order) for new inputs of the pool's kind."""
        fit = self._fitted()
        return np.asarray(fit.model.predict_proba(self._new_inputs(X, text_column, feature_columns)))

    def predict(self, X, *, text_column: str | None = None, feature_columns=None) -> np.ndarray:
        """The most likely label of each input (label values, as taught)."""
        best = self.predict_proba(X, text_column=text_column, feature_columns=feature_columns).argmax(axis=1)
        return np.asarray([self._label_values[int(c)] for c in best])

    # -- a round -------------------------------------------------------------------
    @property
    def strategy_name(self) -> str:
        return self._strategy.name

    def _next_round(self) -> int:
        if self._project is not None:
            latest = self._project.latest_round()
            return (latest.round if latest else 0) + 1
        return len(self._history) + 1

    def query(self, n: int) -> Selection:
        """The next ``n`` pool examples to label: a Selection with ``indices`` (pool
        positions, best first), ``scores`` (aligned; None for strategies that do not score)
        and the strategy's ``diagnostics``. A bound project records the round (its batch
        is what ``anchoral serve`` shows next)."""
        from anchoral.store.database import utc_now

        self._sync()
        n = check_positive_int(n, "n")
        unlabeled = self.unlabeled_indices_
        if n > unlabeled.size:
            raise ValidationError(f"n={n} exceeds the {unlabeled.size} unlabeled examples left in the pool")
        started_at = utc_now()
        rng = np.random.default_rng([self.seed, self._next_round()])
        outcome = fit_and_select(
            self._strategy, self._new_model, self._positions, self._classes, n, rng,
            features=self.features_, inputs=self._texts_for_model(), class_names=self._label_values,
            fitted=self._fit, select=self._select,
        )
        if outcome.fitted is not None:
            self._fit = outcome.fitted
        selection, used = outcome.selection, outcome.strategy
        self._history.append((used, int(self._positions.size), started_at, selection))
        if self._project is not None:
            self._record(used, int(self._positions.size), started_at, selection)
        return selection

    def _select(self, strategy: Strategy, state: RoundState, n: int, rng: np.random.Generator) -> Selection:
        if self.features_ is None and needs_pretrained_features(strategy):
            raise ValidationError(f"strategy {self.strategy_name!r} needs the pool's pretrained features; "
                                  "pass encoder= (e.g. 'minilm')")
        return select(strategy, state, n, rng)

    # -- a labeling project --------------------------------------------------------
    def _record(self, used: str, n_labeled: int, started_at: str, selection: Selection) -> int:
        counts = label_counts(self._label_values, self._classes)
        metrics = {"n_labeled": n_labeled, "label_counts": counts, "source": "python api",
                   **fallback_record(self.strategy_name, used, selection.diagnostics)}
        last_event = self._project.db.execute("SELECT coalesce(max(event), 0) FROM label_events").fetchone()[0]
        scores = None if selection.scores is None else [float(s) for s in selection.scores]
        return self._project.record_round(
            strategy=used, requested_strategy=self.strategy_name, params=self.strategy_params, seed=self.seed,
            batch_size=int(selection.indices.size), n_labeled=n_labeled, last_event=last_event, metrics=metrics,
            started_at=started_at, selected=[int(i) for i in selection.indices], scores=scores,
        )

    def _project_settings(self) -> dict:
        from anchoral import __version__
        from anchoral.store.database import utc_now

        try:
            json.dumps(self.strategy_params)
            json.dumps(self._label_values)
        except TypeError as exc:
            raise ValidationError(f"save() stores the strategy parameters and labels as JSON; {exc}") from None
        named = isinstance(self.model, str)
        batch_sizes = [int(entry[3].indices.size) for entry in self._history]
        return {
            "data_file": None, "data_sha256": None, "text_column": None, "id_column": None, "label_column": None,
            "heldout_file": None,
            "strategy": self.strategy_name,
            "strategy_params": self.strategy_params,
            "batch_size": batch_sizes[-1] if batch_sizes else 50,
            "seed": self.seed,
            "model": self.model if named else "mlp",
            "model_params": self.model_params if named else {},
            "api_model": None if named else repr(self.model),
            "label_values": self._label_values,
            "encoder": "minilm",
            "created_at": utc_now(),
            "created_by": f"anchoral {__version__} (Python API)",
        }

    def save(self, directory) -> ActiveLearner:
        """Write the session as a labeling project in ``directory`` (one SQLite file: the pool,
        the label set, every label and every round so far) and keep it there from now on:
        later ``teach`` and ``query`` calls are stored as they happen, and labels given in
        ``anchoral serve`` are read back. The pool must be texts encoded by MiniLM (what a
        project's rounds use)."""
        from anchoral.encoders import MiniLMEncoder
        from anchoral.store.create import create_project
        from anchoral.store.tabular import Table

        if self._project is not None:
            raise ValidationError(f"this learner is already stored in {self._project.directory}; every change is saved there")
        pool = self._require_pool()
        if pool.texts is None:
            raise ValidationError("save() writes a labeling project, which holds texts (the web app shows them); "
                                  "this learner's pool is a feature matrix")
        if not (self.encoder == "minilm" or isinstance(self.encoder, MiniLMEncoder)):
            raise ValidationError(f"a labeling project's rounds encode its texts with 'minilm'; this learner uses encoder "
                                  f"{self.encoder!r}")
        if len(self._label_values) < 2:
            raise ValidationError("save() needs the label set: declare labels= (or teach at least two labels) first")
        settings = self._project_settings()
        classes: list[int | None] = [None] * len(pool)
        for position, cls in zip(self._positions, self._classes):
            classes[int(position)] = int(cls)
        table = Table(ids=tuple(self.ids_), texts=tuple(pool.texts), classes=tuple(classes))
        project = create_project(directory, [str(v) for v in self._label_values], table, settings, annotator=ANNOTATOR)
        self._project = project
        for used, n_labeled, started_at, selection in self._history:
            self._record(used, n_labeled, started_at, selection)
        self._sync()
        return self

    @classmethod
    def open(cls, directory, *, model=None, embed=None, encoder="minilm") -> ActiveLearner:
        """Reopen a project saved by ``save`` (or made by ``anchoral init``): its pool, label set,
        labels, strategy, model and seed. A project saved with a model object (a scikit-learn
        classifier) needs that ``model=`` again; ``model=`` also overrides a named model."""
        from anchoral.store.project import Project

        project = Project.open(directory)
        try:
            settings = project.settings
            if model is None and settings.get("api_model"):
                raise ValidationError(
                    f"{directory} was saved with the model {settings['api_model']} from Python; pass model= to open() "
                    f"(the web app trains {settings.get('model', 'mlp')!r})"
                )
            label_values = settings.get("label_values") or list(project.labels)
            learner = cls(
                strategy=settings["strategy"],
                model=settings.get("model", "mlp") if model is None else model,
                encoder=encoder,
                labels=label_values,
                embed=embed,
                strategy_params=settings.get("strategy_params") or {},
                model_params=(settings.get("model_params") or {}) if model is None else {},
                seed=int(settings.get("seed", 0)),
            )
            learner._use_pool(Inputs(texts=project.texts(), ids=project.ids()))
            learner._project = project
            learner._sync()
        except BaseException:
            project.close()
            raise
        return learner

    @property
    def project_(self):
        """The labeling project this learner is stored in (``anchoral.store.Project``), or None."""
        return self._project

    def close(self) -> None:
        """Close the project's database connection (a learner not stored anywhere has none)."""
        if self._project is not None:
            self._project.close()
            self._project = None

    def __enter__(self) -> ActiveLearner:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"ActiveLearner(strategy={self.strategy!r}, model={self.model!r}, encoder={self.encoder!r}, "
                f"seed={self.seed})")
