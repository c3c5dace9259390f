"""The strategy interface: what a strategy may see (RoundState) and what it returns (Selection).

A strategy never sees the labels of unlabeled examples nor any group attribute:
``RoundState`` carries exactly what a real deployment has — the frozen-encoder
features of the pool, the labeled indices with their oracle labels, the model
fitted this round and its FitReport.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

import numpy as np

from anchoral.errors import ValidationError
from anchoral.execution import Executor
from anchoral.models.base import FitReport, Model


@dataclass(frozen=True, eq=False)
class RoundState:
    """Everything a strategy may use to pick the next batch.

    Attributes
    ----------
    features : (N, d) float32 pool features from the frozen pretrained encoder.
    labeled_indices : pool indices labeled so far, in the order they were labeled.
    labeled_labels : the oracle's labels for ``labeled_indices`` (same order).
    model : the model fitted on the labeled set this round.
    fit_report : that fit's FitReport (loss curve and per-epoch correctness, rows
        aligned with ``labeled_indices``).
    n_classes : number of classes.
    inputs : what the model consumes for each pool example when that is not
        ``features`` (e.g. the texts, for a fine-tuned transformer); ``None`` = features.
    executor : where pool-wide work runs (``anchoral.execution``): the cached pool
        probabilities and embeddings are computed through it, and strategies may pass it
        to ``anchoral.execution.knn``; ``None`` = in this process.
    """

    features: np.ndarray
    labeled_indices: np.ndarray
    labeled_labels: np.ndarray
    model: Model
    fit_report: FitReport | None
    n_classes: int
    inputs: Any = None
    executor: Executor | None = None

    def __post_init__(self):
        if self.executor is not None and not isinstance(self.executor, Executor):
            raise ValidationError(
                f"executor must be an anchoral.execution.Executor (make_executor('local' or 'ray')) or None; "
                f"got {type(self.executor).__name__}"
            )
        if self.labeled_indices.shape != self.labeled_labels.shape:
            raise ValidationError(
                f"labeled_labels must have one label per labeled index; got {self.labeled_labels.shape} "
                f"labels for {self.labeled_indices.shape} indices"
            )

    @property
    def pool_size(self) -> int:
        return int(self.features.shape[0])

    @cached_property
    def unlabeled_mask(self) -> np.ndarray:
        mask = np.ones(self.pool_size, dtype=bool)
        mask[self.labeled_indices] = False
        return mask

    @cached_property
    def unlabeled_indices(self) -> np.ndarray:
        return np.flatnonzero(self.unlabeled_mask)

    @property
    def model_inputs(self):
        """What the model consumes for the pool: ``inputs`` if given, else ``features``."""
        return self.features if self.inputs is None else self.inputs

    @cached_property
    def pool_probabilities(self) -> np.ndarray:
        """The fitted model's class probabilities for every pool example (computed once)."""
        if self.executor is None:
            return self.model.predict_proba(self.model_inputs)
        return self.executor.predict_proba(self.model, self.model_inputs)

    @cached_property
    def pool_embeddings(self) -> np.ndarray:
        """The fitted model's representation f_enc of every pool example (computed once)."""
        if self.executor is None:
            return self.model.embed(self.model_inputs)
        return self.executor.embed(self.model, self.model_inputs)


@dataclass(frozen=True)
class Selection:
    """A strategy's answer: pool indices to label, their scores and what it did.

    ``scores`` is aligned with ``indices`` (higher = picked first) or ``None`` for
    strategies that do not score; ``diagnostics`` holds strategy-specific facts
    (fallbacks taken, phase timings, candidate counts, ...).
    """

    indices: np.ndarray
    scores: np.ndarray | None = None
    diagnostics: dict = field(default_factory=dict)


class Strategy(ABC):
    """Base class of every query strategy. Subclasses implement ``_select``.

    ``select`` is pure given (state, n, rng): no refitting, no hidden state between
    calls, randomness only from ``rng``. It validates its inputs and checks the
    contract of the answer (``n`` distinct unlabeled indices).
    """

    name: ClassVar[str] = ""
    is_ablation: ClassVar[bool] = False
    """True for a paper's ablation variants: selectable by name, left out of the demo's default set."""

    def select(self, state: RoundState, n: int, rng: np.random.Generator) -> Selection:
        if not isinstance(state, RoundState):
            raise ValidationError(f"state must be a RoundState; got {type(state).__name__}")
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
            raise ValidationError(f"n (the batch size) must be a positive integer; got {n!r}")
        available = state.unlabeled_indices.size
        if n > available:
            raise ValidationError(f"n={n} exceeds the {available} unlabeled examples left in the pool")
        if not isinstance(rng, np.random.Generator):
            raise ValidationError(
                f"rng must be a numpy.random.Generator (np.random.default_rng(seed)); got {type(rng).__name__}"
            )
        selection = self._select(state, int(n), rng)
        indices = np.asarray(selection.indices, dtype=np.int64)
        if indices.shape != (n,) or np.unique(indices).size != n or not state.unlabeled_mask[indices].all():
            raise AssertionError(
                f"strategy {self.name!r} broke its contract: expected {n} distinct unlabeled indices, got {indices!r}"
            )
        return Selection(indices=indices, scores=selection.scores, diagnostics=dict(selection.diagnostics))

    @abstractmethod
    def _select(self, state: RoundState, n: int, rng: np.random.Generator) -> Selection:
        ...

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({params})"
