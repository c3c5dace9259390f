"""The active-learning loop: the one place that orders a round.

Each round (ALVIN §4.1; Tamkin et al. §2):
1. fit the model on the labeled set, from the same initial weights every round;
2. evaluate it (a caller-supplied callback: the loop itself knows no test data);
3. give the strategy a RoundState (no pool labels, no groups) and ask for the next batch;
4. ask the oracle for the batch's labels and add them to the labeled set.

The number of labeled examples follows a schedule: the seed set, then steps of
``batch_size`` up to the budget, with a step shortened wherever that is needed to
land exactly on a checkpoint (e.g. 1%, 5% and 10% of the pool, ALVIN Table 1).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from anchoral.errors import ValidationError
from anchoral.execution import Executor
from anchoral.models.base import FitReport, Model, fit_model
from anchoral.strategies.base import RoundState, Strategy
from anchoral.validation import check_features, check_labels, check_positive_int


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
        for round_number, size in enumerate(schedule):
            started = time.perf_counter()
            fit_report = fit_model(self.model, take(inputs, labeled), labels, features)
            record = RoundRecord(round=round_number, n_labeled=int(labeled.size), fit=fit_report,
                                 fit_seconds=time.perf_counter() - started)
            if evaluate is not None:
                record.metrics = evaluate(self.model, labeled.copy())
            if round_number + 1 < len(schedule):
                state = RoundState(
                    features=features,
                    inputs=None if inputs is features else inputs,
                    labeled_indices=labeled.copy(),
                    labeled_labels=labels.copy(),
                    model=self.model,
                    fit_report=fit_report,
                    n_classes=self.model.n_classes,
                    executor=self.executor,
                )
                started = time.perf_counter()
                selection = self.strategy.select(state, schedule[round_number + 1] - size, rng)
                record.select_seconds = time.perf_counter() - started
                record.selected = selection.indices
                record.selection_scores = selection.scores
                record.diagnostics = selection.diagnostics
                labeled = np.concatenate([labeled, selection.indices])
                labels = np.concatenate([labels, oracle.label(selection.indices)])
            records.append(record)
            if on_round is not None:
                on_round(record)
        return records
