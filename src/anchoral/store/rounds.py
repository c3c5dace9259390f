"""One round of a labeling project: embed the pool, run the round, record it.

The round itself is ``anchoral.loop.fit_and_select``, the one place that orders a round
(the simulated loop and ``ActiveLearner.query`` run the same): the project's model is
fitted from its fixed initial weights on every label given so far, measured on the
held-out set when the project has one, and the strategy sees only a RoundState. Its
random generator is ``np.random.default_rng([seed, round])``.

Training needs at least ``MIN_LABELS_PER_CLASS`` labels of every class (the
stratified seed set of ``anchoral.loop`` asks the same). Until then the batch is a
cold start: the items nearest the centres of a k-means clustering of the unlabeled
pool's embeddings, a diverse sample for finding every class, and the round records
which labels were missing. ``COLD_START``, ``MIN_LABELS_PER_CLASS``, ``coverage_problem``
and ``cold_start_batch`` live in ``anchoral.loop`` and are importable from here too.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from anchoral.encoders import MiniLMEncoder, default_cache
from anchoral.encoders.base import Encoder
from anchoral.errors import ValidationError
from anchoral.loop import (
    COLD_START,
    MIN_LABELS_PER_CLASS,
    FittedModel,
    Progress,
    cold_start_batch,
    coverage_problem,
    fit_and_select,
    fit_labeled,
    label_counts,
)
from anchoral.models import MODELS, make_model, with_shared_state_cache
from anchoral.store.database import ProjectError, utc_now
from anchoral.store.project import Project
from anchoral.strategies import make_strategy

ENCODE_CHUNK = 512

__all__ = [
    "COLD_START",
    "MIN_LABELS_PER_CLASS",
    "FittedModel",
    "Progress",
    "ReportingEncoder",
    "RoundResult",
    "cold_start_batch",
    "coverage_problem",
    "embed",
    "fit_current_labels",
    "make_project_model",
    "pool_probabilities",
    "reads_texts",
    "run_round",
    "takes_texts",
]


def _silent(stage: str, done: int, total: int) -> None:
    pass


class ReportingEncoder:
    """Wraps an encoder so embedding reports progress in chunks; same fingerprint, same cache entries."""

    def __init__(self, encoder: Encoder, progress: Progress, stage: str):
        self.encoder = encoder
        self.fingerprint = encoder.fingerprint
        self.dimension = encoder.dimension
        self.progress = progress
        self.stage = stage

    def encode(self, inputs: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        texts = list(inputs)
        output = np.empty((len(texts), self.dimension), dtype=np.float32)
        self.progress(self.stage, 0, len(texts))
        for start in range(0, len(texts), ENCODE_CHUNK):
            chunk = texts[start : start + ENCODE_CHUNK]
            output[start : start + len(chunk)] = self.encoder.encode(chunk, batch_size=batch_size, progress=False)
            self.progress(self.stage, start + len(chunk), len(texts))
        return output


def embed(texts: list[str], encoder: Encoder | None, progress: Progress = _silent, stage: str = "embedding the pool") -> np.ndarray:
    """Embeddings of ``texts`` through the on-disk cache (computed only on the first call)."""
    encoder = MiniLMEncoder() if encoder is None else encoder
    progress(stage, 0, len(texts))
    embeddings = default_cache().encode(ReportingEncoder(encoder, progress, stage), texts, progress=False)
    progress(stage, len(texts), len(texts))
    return embeddings


def fit_current_labels(project: Project, features: np.ndarray, texts: list[str] | None = None) -> FittedModel:
    """Train the project's model on every current label; ProjectError naming what is missing if it cannot."""
    problem = coverage_problem(project.label_counts())
    if problem:
        raise ProjectError(f"cannot train a model yet: {problem}; label more items first")
    positions, classes, _ = project.current_labels()
    return _fit(project, features, positions, classes, texts)


def make_project_model(project: Project):
    """The model named in the project's settings (``mlp`` for projects made before models were selectable)."""
    name = project.settings.get("model", "mlp")
    return make_model(name, project.n_classes, seed=int(project.settings.get("seed", 0)),
                      **with_shared_state_cache(name, project.settings.get("model_params") or {}))


def takes_texts(model) -> bool:
    return getattr(model, "input_kind", "features") == "texts"


def reads_texts(project: Project) -> bool:
    """Whether the project's model consumes the texts (a fine-tuned transformer), not the embeddings."""
    return getattr(MODELS.get(project.settings.get("model", "mlp")), "input_kind", "features") == "texts"


def _fit(project: Project, features, positions, classes, texts: list[str] | None = None) -> FittedModel:
    if reads_texts(project) and texts is None:
        texts = project.texts()
    return fit_labeled(lambda: make_project_model(project), positions, classes, features=np.asarray(features),
                       inputs=texts if reads_texts(project) else None)


@dataclass
class RoundResult:
    """What ``run_round`` did: the recorded round number, the batch ids and the metrics stored with it."""

    round: int
    strategy: str
    selected_ids: list[str]
    metrics: dict
    fallback: str | None = None
    seconds: float = 0.0
    timings: dict = field(default_factory=dict)


def run_round(
    project: Project,
    *,
    strategy: str | None = None,
    n: int | None = None,
    params: dict | None = None,
    encoder: Encoder | None = None,
    progress: Progress = _silent,
    holder: str = "anchoral query",
) -> RoundResult:
    """Train on the current labels, select the next ``n`` items and record the round.

    ``strategy`` and ``n`` default to the project's settings (chosen at ``init``).
    Nothing is written until the round is complete, then it is written in one
    transaction: killing the process before that leaves the project as it was.
    One round at a time: the project's round lock (``Project.round_lock``, held
    as ``holder``) refuses a second round while this one is computed.
    """
    with project.round_lock(holder):
        return _run_round(project, strategy=strategy, n=n, params=params, encoder=encoder, progress=progress)


def _run_round(project: Project, *, strategy, n, params, encoder, progress) -> RoundResult:
    started_at, started = utc_now(), time.perf_counter()
    strategy = strategy or project.settings["strategy"]
    params = dict(params or {})
    chosen = make_strategy(strategy, **params)  # validates the name and parameters before any work
    n = project.settings["batch_size"] if n is None else n
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
        raise ValidationError(f"n (the batch size) must be a positive integer; got {n!r}")
    seed = int(project.settings.get("seed", 0))

    positions, classes, last_event = project.current_labels()
    unlabeled = np.setdiff1d(np.arange(project.pool_size), positions)
    waiting = project.awaiting_agreement()  # overlap items part-labeled or in review: never selected again
    selectable = int(unlabeled.size - np.intersect1d(unlabeled, waiting).size)
    if selectable == 0:
        raise ProjectError("every item in the pool is labeled or awaiting its labelers' agreement; "
                           "there is nothing left to select")
    n = min(int(n), selectable)
    latest = project.latest_round()
    round_number = (latest.round if latest else 0) + 1
    rng = np.random.default_rng([seed, round_number])

    texts = project.texts()
    features = np.asarray(embed(texts, encoder, progress))
    timings = {"embed_seconds": time.perf_counter() - started}
    metrics: dict = {"n_labeled": int(positions.size), "label_counts": label_counts(project.labels, classes)}
    # Strategies see items awaiting agreement as unlabeled: ask for as many more and drop them.
    asked = min(n + waiting.size, int(unlabeled.size))
    outcome = fit_and_select(
        chosen, lambda: make_project_model(project), positions, classes, asked, rng,
        features=features, inputs=texts if reads_texts(project) else None, class_names=project.labels,
        evaluate=lambda fitted: _measure(project, fitted, encoder, progress), progress=progress,
    )
    metrics.update(outcome.metrics)
    metrics.update(outcome.fallback_record())
    if outcome.fitted is not None:
        timings.update(fit_seconds=outcome.fitted.seconds, select_seconds=outcome.select_seconds)
    used, selected, scores = outcome.strategy, outcome.selection.indices, outcome.selection.scores
    if waiting.size:
        awaiting = np.isin(selected, waiting)
        keep = np.flatnonzero(~awaiting)[:n]
        metrics["skipped_awaiting_agreement"] = int(awaiting.sum())
        selected, scores = selected[keep], None if scores is None else np.asarray(scores)[keep]
    timings["total_seconds"] = time.perf_counter() - started
    metrics["timings"] = {key: round(value, 3) for key, value in timings.items()}
    number = project.record_round(
        strategy=used,
        requested_strategy=strategy,
        params=params,
        seed=seed,
        batch_size=n,
        n_labeled=int(positions.size),
        last_event=last_event,
        metrics=metrics,
        started_at=started_at,
        selected=[int(i) for i in selected],
        scores=None if scores is None else [float(s) for s in scores],
        follows=latest.round if latest else None,
    )
    ids = project.ids()
    progress("done", 1, 1)
    return RoundResult(
        round=number,
        strategy=used,
        selected_ids=[ids[int(i)] for i in selected],
        metrics=metrics,
        fallback=outcome.cold_start,
        seconds=timings["total_seconds"],
        timings=metrics["timings"],
    )


def _measure(project: Project, fitted: FittedModel, encoder, progress) -> dict:
    """The fit, and (with a held-out set) its accuracy there, as a round's metrics record them."""
    report = fitted.fit_report
    metrics: dict = {"fit": {"epochs": report.epochs, "stop_reason": report.stop_reason,
                             "final_loss": float(report.final_loss)}}
    # a robust head says what it trained, and why if not as asked; a fine-tuned model with
    # train_layers, what its fit computed, reused and read from disk of the frozen states
    for key in ("trained_head", "fallback", "frozen_states"):
        if key in report.extra:
            metrics["fit"][key] = report.extra[key]
    heldout = project.heldout()
    if heldout is not None:
        held_texts, truth = heldout
        if takes_texts(fitted.model):
            held_inputs = list(held_texts)
        else:
            held_inputs = np.asarray(embed(held_texts, encoder, progress, stage="embedding the held-out set"))
        predicted = fitted.model.predict_proba(held_inputs).argmax(axis=1)
        metrics["heldout"] = {"accuracy": float((predicted == truth).mean()), "n": int(truth.size)}
    return metrics


def pool_probabilities(project: Project, *, encoder: Encoder | None = None, progress: Progress = _silent) -> np.ndarray:
    """Class probabilities for every pool item from a model trained on the current labels."""
    texts = project.texts()
    features = embed(texts, encoder, progress)
    progress("training the model", 0, 1)
    fitted = fit_current_labels(project, features, texts)
    progress("training the model", 1, 1)
    return fitted.model.predict_proba(texts if takes_texts(fitted.model) else np.asarray(features))
