"""The active-learning loop: the one place that orders a round.

``fit_and_select`` is one round, and every caller's round is it: the simulated
``ActiveLearningLoop.run`` below, a labeling project's ``anchoral.store.rounds.run_round``
(``anchoral query`` and the web app's Next batch) and ``anchoral.ActiveLearner.query``.
Each round (ALVIN §4.1; Tamkin et al. §2):
1. fit the model on the labeled set, from the same initial weights every round;
2. evaluate it (a caller-supplied callback: the round itself knows no test data);
3. give the strategy a RoundState (no pool labels, no groups) and ask for the next batch;
4. ask the oracle (the simulation's known labels, or people) for the batch's labels.

Until every class has ``MIN_LABELS_PER_CLASS`` labels no model is trained: the batch is a
cold start (``cold_start_batch``: the unlabeled items nearest the centres of a k-means
clustering of the pool's features, a diverse sample for finding every class), and the
round says why. That fallback and the strategy's own (``diagnostics["fallbacks"]``) are
recorded by ``fallback_record``, the same way for a project and the Python API.

In a simulation the number of labeled examples follows a schedule: the seed set, then
steps of ``batch_size`` up to the budget, with a step shortened wherever that is needed
to land exactly on a checkpoint (e.g. 1%, 5% and 10% of the pool, ALVIN Table 1).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence

import numpy as np

from anchoral.errors import ValidationError
from anchoral.execution import Executor
from anchoral.models.base import FitReport, Model, fit_model
from anchoral.strategies.base import RoundState, Selection, Strategy
from anchoral.validation import check_features, check_labels, check_positive_int

MIN_LABELS_PER_CLASS = 2
"""Labels of every class a round needs before it trains a model (the seed set asks the same)."""
COLD_START = "cold-start-kmeans"
RANDOM_START = "random"
"""The cold start of a pool without features (texts read by the model itself): a uniform sample."""

Progress = Callable[[str, int, int], None]
"""Called as progress(stage, done, total) while a round works."""


class Oracle(Protocol):
    def label(self, indices: np.ndarray) -> np.ndarray: ...


class SimulatedOracle:
    """Answers label queries from known labels (simulated experiments)."""

    def __init__(self, labels):
        self._labels = check_labels(labels, name="oracle labels")
        self.queries = 0

    def label(self, indices: np.ndarray) -> np.ndarray:
        self.queries += len(indices)
        return self._labels[np.asarray(indices, dtype=np.int64)].copy()


def take(inputs, indices: np.ndarray):
    """Rows ``indices`` of an array, or the items of a sequence (e.g. a list of texts)."""
    if isinstance(inputs, np.ndarray):
        return inputs[indices]
    return [inputs[int(i)] for i in indices]


def resolve_size(value: int | float, pool_size: int, name: str) -> int:
    """An absolute count, or a fraction of the pool when ``value`` is a float in (0, 1]."""
    if isinstance(value, bool):
        raise ValidationError(f"{name} must be a count or a fraction of the pool; got {value!r}")
    if isinstance(value, (int, np.integer)):
        count = int(value)
    elif isinstance(value, float) and 0 < value <= 1:
        count = max(1, int(round(value * pool_size)))  # a positive fraction is at least one example
    else:
        raise ValidationError(
            f"{name} must be a positive integer count or a float fraction in (0, 1] of the pool; got {value!r}"
        )
    if count <= 0:
        raise ValidationError(f"{name} must be positive; got {value!r} (= {count} examples)")
    if count > pool_size:
        raise ValidationError(f"{name}={value!r} asks for {count} examples but the pool has only {pool_size}")
    return count


def labeled_size_schedule(seed_size: int, batch_size: int, budget: int, checkpoints=()) -> list[int]:
    """Labeled-set sizes after each round: seed, +batch_size ..., budget; checkpoints hit exactly."""
    batch_size = check_positive_int(batch_size, "batch_size")
    if budget < seed_size:
        raise ValidationError(f"budget ({budget}) must be at least the seed-set size ({seed_size})")
    stops = sorted({int(c) for c in checkpoints if seed_size < int(c) < budget} | {budget})
    sizes = [seed_size]
    for stop in stops:
        while sizes[-1] < stop:
            sizes.append(min(sizes[-1] + batch_size, stop))
    return sizes


def stratified_seed_set(labels: np.ndarray, size: int, n_classes: int, rng: np.random.Generator, *, min_per_class: int = 2) -> np.ndarray:
    """A seed set of ``size`` pool indices, stratified by class, at least ``min_per_class`` each."""
    labels = check_labels(labels, name="labels")
    size = max(size, min_per_class * n_classes)
    by_class = [np.flatnonzero(labels == c) for c in range(n_classes)]
    for c, members in enumerate(by_class):
        if members.size < min_per_class:
            raise ValidationError(
                f"the pool has {members.size} examples of class {c}; the seed set needs at least {min_per_class} per class"
            )
    target = np.array([m.size for m in by_class], dtype=float) / labels.size * size
    per_class = np.maximum(min_per_class, np.floor(target).astype(int))
    while per_class.sum() > size:  # the minimum pushed us over: take back where we are most above target
        excess = np.where(per_class > min_per_class, per_class - target, -np.inf)
        per_class[int(np.argmax(excess))] -= 1
    while per_class.sum() < size:  # hand out what flooring left, largest remainder first
        per_class[int(np.argmax(target - per_class))] += 1
    chosen = [rng.choice(members, size=min(k, members.size), replace=False) for members, k in zip(by_class, per_class)]
    return rng.permutation(np.concatenate(chosen))


def label_counts(class_names: Sequence, labels: np.ndarray) -> dict[str, int]:
    """Labels of each class, by name: ``class_names`` in class-id order, ``labels`` class ids."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(class_names))
    return {str(name): int(counts[c]) for c, name in enumerate(class_names)}


def coverage_problem(counts: dict[str, int], minimum: int = MIN_LABELS_PER_CLASS) -> str | None:
    """Why the labels cannot train a model yet (naming each short label), or None if they can."""
    short = {name: count for name, count in counts.items() if count < minimum}
    if not short:
        return None
    listed = ", ".join(f"{name!r} has {count}" for name, count in short.items())
    return f"training needs at least {minimum} labeled examples of every label; {listed}"


def training_problem(class_names: Sequence, labels: np.ndarray, minimum: int = MIN_LABELS_PER_CLASS) -> str | None:
    """The cold-start rule: why no model can be trained on ``labels`` yet, or None if one can.

    Projects and simulations always declare their classes; only a Python learner that
    infers its label set from what it was taught can know fewer than two."""
    if len(class_names) < 2:
        return (f"training needs at least two labels; taught so far: {list(class_names) or 'none'} "
                "(declare labels= to name them all)")
    return coverage_problem(label_counts(class_names, labels), minimum)


def cold_start_batch(features: np.ndarray, unlabeled: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` unlabeled items nearest the centres of an n-means clustering of their embeddings."""
    from sklearn.cluster import KMeans

    if n >= unlabeled.size:
        return rng.permutation(unlabeled)
    points = np.asarray(features[unlabeled], dtype=np.float32)
    clustering = KMeans(n_clusters=n, n_init=1, max_iter=50, random_state=int(rng.integers(2**31 - 1))).fit(points)
    centres = clustering.cluster_centers_
    distances = (points**2).sum(1)[:, None] - 2 * points @ centres.T + (centres**2).sum(1)[None, :]
    chosen: list[int] = []
    taken = np.zeros(unlabeled.size, dtype=bool)
    for centre in range(n):
        order = np.argsort(distances[:, centre])
        pick = next(int(i) for i in order if not taken[i])
        taken[pick] = True
        chosen.append(pick)
    return unlabeled[np.array(chosen, dtype=np.int64)]


@dataclass
class FittedModel:
    """A model fitted on a labeled set, its FitReport and the seconds building and fitting it took."""

    model: Model
    fit_report: FitReport
    seconds: float


def fit_labeled(new_model: Callable[[], Model], labeled_indices: np.ndarray, labeled_labels: np.ndarray, *,
                features, inputs=None) -> FittedModel:
    """Build a model with ``new_model()`` (the same initial weights every call) and fit it on the
    labeled rows of ``inputs`` (what the model consumes; ``None`` = ``features``), handing it the
    pool's ``features`` when it asks for them (``fit_model``)."""
    started = time.perf_counter()
    model = new_model()
    report = fit_model(model, take(features if inputs is None else inputs, labeled_indices), labeled_labels, features)
    return FittedModel(model, report, time.perf_counter() - started)


def fallback_record(requested: str, used: str, diagnostics: dict) -> dict:
    """What a stored round records of its fallbacks: ``fallback`` (why ``used`` selected instead of
    the ``requested`` strategy) or ``strategy_fallbacks`` (what the strategy itself fell back on)."""
    fallbacks = [str(item) for item in diagnostics.get("fallbacks", [])]
    if used != requested:
        return {"fallback": fallbacks[0] if fallbacks else used}
    return {"strategy_fallbacks": fallbacks} if fallbacks else {}


@dataclass
class RoundOutcome:
    """What ``fit_and_select`` did.

    strategy : what selected: the strategy's name, or ``COLD_START`` / ``RANDOM_START``.
    requested : the strategy's name.
    selection : the batch (``None`` when ``n`` was 0); a cold start's diagnostics are
        ``{"fallbacks": [why], "strategy": strategy}``.
    fitted : the model fitted this round (``None`` in a cold start).
    metrics : what ``evaluate`` returned (``{}`` without it or in a cold start).
    select_seconds : building the RoundState and selecting (or choosing the cold start).
    """

    strategy: str
    requested: str
    selection: Selection | None
    fitted: FittedModel | None
    metrics: dict = field(default_factory=dict)
    select_seconds: float = 0.0

    @property
    def cold_start(self) -> str | None:
        """Why the round did not train a model and select with the strategy, or None."""
        return self.selection.diagnostics["fallbacks"][0] if self.fitted is None and self.selection is not None else None

    def fallback_record(self) -> dict:
        return {} if self.selection is None else fallback_record(self.requested, self.strategy, self.selection.diagnostics)


def _ask(strategy: Strategy, state: RoundState, n: int, rng: np.random.Generator) -> Selection:
    return strategy.select(state, n, rng)


def fit_and_select(
    strategy: Strategy,
    new_model: Callable[[], Model],
    labeled_indices: np.ndarray,
    labeled_labels: np.ndarray,
    n: int,
    rng: np.random.Generator,
    *,
    features: np.ndarray | None,
    class_names: Sequence,
    inputs=None,
    min_labels_per_class: int = MIN_LABELS_PER_CLASS,
    fitted: FittedModel | None = None,
    evaluate: Callable[[FittedModel], dict] | None = None,
    select: Callable[[Strategy, RoundState, int, np.random.Generator], Selection] = _ask,
    executor: Executor | None = None,
    progress: Progress | None = None,
) -> RoundOutcome:
    """One round: fit on the labeled set -> ``evaluate`` -> RoundState -> the strategy's next ``n``.

    Until every class has ``min_labels_per_class`` labels (``training_problem``) nothing is
    fitted: the batch is ``cold_start_batch`` of the unlabeled pool (a uniform sample when the
    pool has no ``features``), its diagnostics say why. ``n = 0`` fits and evaluates only
    (the last round of a simulation).

    Parameters
    ----------
    strategy : selects the batch (``select(strategy, state, n, rng)``, default ``strategy.select``;
        the Python API passes one that names what a scikit-learn model cannot give).
    new_model : builds the model, with the same initial weights every call; called only when
        a model is fitted (a cold start builds none).
    labeled_indices, labeled_labels : pool positions labeled so far and their class ids.
    n : batch size, at most the number of unlabeled examples.
    rng : the selection's only source of randomness (the fit has its own seed). How each
        caller seeds it: ``ActiveLearningLoop.run`` passes the one generator it was given to
        every round of a run, so a round's draws follow the previous rounds'; a labeling
        project (``anchoral.store.rounds``) and ``ActiveLearner.query`` pass
        ``np.random.default_rng([seed, round])``, so the same labels, seed and round number
        give the same batch from either.
    features : (N, d) pretrained-encoder features of the pool, or None (a model that reads
        texts, with no encoder); passed as they are, never copied.
    class_names : the classes in class-id order (names in the fallback messages).
    inputs : what the model consumes for each pool example when that is not ``features``
        (e.g. texts, for a fine-tuned transformer).
    min_labels_per_class : the cold-start threshold. A simulation, whose seed set is checked to
        hold every class, passes 1 and so never cold-starts.
    fitted : this round's fit when the caller already has it (the API fits as labels are taught).
    evaluate : called with the fit before the selection; its dict becomes ``metrics``.
    executor : where pool-wide prediction and search run (into the RoundState).
    progress : called as progress(stage, done, total) around the fit and the selection.
    """
    progress = progress or _no_progress
    n_pool = features.shape[0] if features is not None else len(inputs)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValidationError(f"n (the batch size) must be a non-negative integer; got {n!r}")
    if n > n_pool - len(labeled_indices):
        raise ValidationError(f"n={n} exceeds the {n_pool - len(labeled_indices)} unlabeled examples left in the pool")
    problem = training_problem(class_names, labeled_labels, min_labels_per_class)
    if problem and n == 0:
        return RoundOutcome(strategy.name, strategy.name, None, None)
    if problem:
        return _cold_start(strategy, problem, features, labeled_indices, n_pool, n, rng, progress)
    if fitted is None:
        progress("training the model", 0, 1)
        fitted = fit_labeled(new_model, labeled_indices, labeled_labels, features=features, inputs=inputs)
        progress("training the model", 1, 1)
    outcome = RoundOutcome(strategy.name, strategy.name, None, fitted)
    if evaluate is not None:
        outcome.metrics = evaluate(fitted)
    if n == 0:
        return outcome
    progress(f"selecting with {strategy.name}", 0, 1)
    started = time.perf_counter()
    state = RoundState(
        features=features if features is not None else np.zeros((n_pool, 0), dtype=np.float32),
        inputs=inputs,
        labeled_indices=np.array(labeled_indices),
        labeled_labels=np.array(labeled_labels),
        model=fitted.model,
        fit_report=fitted.fit_report,
        n_classes=len(class_names),
        executor=executor,
    )
    outcome.selection = select(strategy, state, n, rng)
    outcome.select_seconds = time.perf_counter() - started
    progress(f"selecting with {strategy.name}", 1, 1)
    return outcome


def _no_progress(stage: str, done: int, total: int) -> None:
    pass


def _cold_start(strategy, problem, features, labeled_indices, n_pool, n, rng, progress) -> RoundOutcome:
    """The batch of a round that cannot train a model: diverse items by their features, else uniform."""
    unlabeled = np.setdiff1d(np.arange(n_pool), labeled_indices)
    started = time.perf_counter()
    if features is None:
        used, selected, how = RANDOM_START, rng.choice(unlabeled, size=n, replace=False), RANDOM_START
    else:
        progress("choosing a diverse cold-start batch", 0, 1)
        used, selected, how = COLD_START, cold_start_batch(features, unlabeled, n, rng), f"{COLD_START} (diverse items)"
        progress("choosing a diverse cold-start batch", 1, 1)
    note = f"{problem}: selected by {how} instead of {strategy.name}"
    selection = Selection(indices=selected, diagnostics={"fallbacks": [note], "strategy": used})
    return RoundOutcome(used, strategy.name, selection, None, select_seconds=time.perf_counter() - started)


@dataclass
class RoundRecord:
    """What happened in one round. ``selected`` is the batch chosen after this round's fit."""

    round: int
    n_labeled: int
    fit: FitReport
    fit_seconds: float
    select_seconds: float = 0.0
    selected: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    selection_scores: np.ndarray | None = None
    diagnostics: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)


@dataclass(frozen=True)
class LoopConfig:
    """Parameters of a simulated run (defaults: ALVIN §4.1's protocol).

    seed_size, budget : a count, or a float fraction of the pool (0.001 = 0.1%, 0.1 = 10%).
    checkpoints : labeled-set sizes (counts or fractions) the schedule must land on exactly.
    """

    batch_size: int = 50
    budget: int | float = 0.10
    seed_size: int | float = 0.001
    min_seed_per_class: int = 2
    checkpoints: tuple = (0.01, 0.05, 0.10)


class ActiveLearningLoop:
    """Runs rounds of fit -> evaluate -> select -> label until the budget is spent.

    ``executor`` (``anchoral.execution``), if given, is where each round's pool-wide
    prediction and search run (it goes into every RoundState); ``None`` = this process.
    """

    def __init__(self, strategy: Strategy, model: Model, config: LoopConfig = LoopConfig(), *,
                 executor: Executor | None = None):
        if not isinstance(strategy, Strategy):
            raise ValidationError(f"strategy must be a Strategy; got {type(strategy).__name__}")
        if executor is not None and not isinstance(executor, Executor):
            raise ValidationError(f"executor must be an anchoral.execution.Executor or None; got {type(executor).__name__}")
        self.strategy = strategy
        self.model = model
        self.config = config
        self.executor = executor

    def seed_size(self, pool_size: int) -> int:
        """Size of the stratified seed set: the configured size, at least min_seed_per_class per class."""
        requested = resolve_size(self.config.seed_size, pool_size, "seed_size")
        return max(requested, self.config.min_seed_per_class * self.model.n_classes)

    def plan(self, pool_size: int, seed_size: int | None = None) -> list[int]:
        """The labeled-set size after each round, from the seed set to the budget."""
        config = self.config
        batch_size = check_positive_int(config.batch_size, "batch_size")
        budget = resolve_size(config.budget, pool_size, "budget")
        seed_size = self.seed_size(pool_size) if seed_size is None else seed_size
        if seed_size > budget:
            raise ValidationError(
                f"the seed set ({seed_size} examples: at least {config.min_seed_per_class} per class) is larger than the budget ({budget})"
            )
        checkpoints = [resolve_size(c, pool_size, "checkpoints") for c in config.checkpoints]
        return labeled_size_schedule(seed_size, batch_size, budget, checkpoints)

    def run(
        self,
        features,
        oracle: Oracle,
        rng: np.random.Generator,
        *,
        seed_indices=None,
        seed_labels=None,
        evaluate: Callable[[Model, np.ndarray], dict] | None = None,
        on_round: Callable[[RoundRecord], None] | None = None,
        inputs=None,
    ) -> list[RoundRecord]:
        """Run the whole schedule. ``seed_indices`` (with their labels from the oracle unless
        ``seed_labels`` is given) start the labeled set; every class must appear in it.

        ``features`` are the pool's frozen pretrained-encoder features; ``inputs`` is what
        the model consumes (default: the features; a fine-tuned transformer takes texts).
        """
        features = check_features(features, "features")
        if self.executor is not None:  # e.g. a read-only view Ray ships once per run, not once per round
            features = self.executor.for_reuse(features)
        pool_size = features.shape[0]
        if inputs is None:
            inputs = features
        elif len(inputs) != pool_size:
            raise ValidationError(f"inputs has {len(inputs)} entries; expected {pool_size} (one per pool example)")
        self.plan(pool_size)  # validates budget and batch size before any work
        if seed_indices is None:
            raise ValidationError("seed_indices are required: pass stratified_seed_set(...) or your own labeled seed")
        labeled = np.asarray(seed_indices, dtype=np.int64)
        if labeled.ndim != 1 or labeled.size == 0 or np.unique(labeled).size != labeled.size:
            raise ValidationError("seed_indices must be a non-empty 1-D array of distinct pool indices")
        if labeled.min() < 0 or labeled.max() >= pool_size:
            raise ValidationError(f"seed_indices must lie in [0, {pool_size}); got range [{labeled.min()}, {labeled.max()}]")
        labels = oracle.label(labeled) if seed_labels is None else check_labels(seed_labels, labeled.size, "seed_labels")
        missing = sorted(set(range(self.model.n_classes)) - set(labels.tolist()))
        if missing:
            raise ValidationError(f"the seed set is missing class(es) {missing}; every class needs at least one labeled example")
        schedule = self.plan(pool_size, seed_size=int(labeled.size))

        records: list[RoundRecord] = []
        classes = range(self.model.n_classes)
        for round_number, size in enumerate(schedule):
            n = schedule[round_number + 1] - size if round_number + 1 < len(schedule) else 0

            def measure(fitted: FittedModel, labeled=labeled) -> dict:
                return evaluate(fitted.model, labeled.copy())

            outcome = fit_and_select(
                self.strategy, lambda: self.model, labeled, labels, n, rng,
                features=features, inputs=None if inputs is features else inputs, class_names=classes,
                min_labels_per_class=1, evaluate=None if evaluate is None else measure, executor=self.executor,
            )
            record = RoundRecord(round=round_number, n_labeled=int(labeled.size), fit=outcome.fitted.fit_report,
                                 fit_seconds=outcome.fitted.seconds, select_seconds=outcome.select_seconds,
                                 metrics=outcome.metrics)
            if outcome.selection is not None:
                selection = outcome.selection
                record.selected = selection.indices
                record.selection_scores = selection.scores
                record.diagnostics = selection.diagnostics
                labeled = np.concatenate([labeled, selection.indices])
                labels = np.concatenate([labels, oracle.label(selection.indices)])
            records.append(record)
            if on_round is not None:
                on_round(record)
        return records
