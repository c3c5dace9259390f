"""Selection speed of our strategies against small-text and scikit-activeml, same process, same inputs.

Installs nothing: the peers come from the ``bench`` extra (``pip install -e '.[bench]'``);
a peer that does not import is reported as unavailable and its columns print ``-``.

Workload (``build_workload``), per pool size N
----------------------------------------------
- pool: N float32 points in d = 384, two overlapping Gaussian classes (means
  +-1.25 noise units along a random direction, Bayes error ~11%);
- labeled: 200 points, 100 per class, with their true labels; b = 100;
- model: one scikit-learn ``LogisticRegression`` (lbfgs, C = 1) fitted on the 200
  labeled points. Every library reads its probabilities from this one fitted
  estimator, and its representation is the features themselves (identity embedding):
  ours through ``LogRegAdapter`` (``predict_proba`` = LR, ``embed`` = identity,
  ``proba_from_embedding`` = LR), small-text through ``SmallTextAdapter``
  (``predict_proba(dataset)``, ``embed(dataset, return_proba=...)``), scikit-activeml
  through its own ``SklearnClassifier`` wrapper fitted on the same 200 points, whose
  ``estimator_`` is then replaced by the shared LR (checked: identical probabilities).
- ALVIN (ours only, no peer implements it) needs a FitReport with per-epoch
  correctness. A single LR fit has no epochs, and an LR memorises 200 points in 384
  dimensions, so the benchmark gives ALVIN a FitReport that marks a fixed random 25%
  of each class's labeled examples as never correct (what an under-trained fit on
  noisy labels produces, cf. ``select_speed.py``). ALVIN's cost depends on the number
  of anchors, not on which examples are minority: K (anchors per pair) is set so
  that pairs x K is ~1,500, and the anchor count, candidate count and fallbacks
  of every ALVIN call are printed, so a fallback cannot pass unseen.

What each timed call includes (``time.perf_counter`` around exactly this)
------------------------------------------------------------------------
- ours: ``strategy.select(RoundState(features, labeled, labels, model, report, 2), b, rng)``
  with a *fresh* RoundState built inside the timed region, so the pool's
  probabilities (LR ``predict_proba`` over all N rows) and embeddings (identity) are
  computed inside the call, as the peers compute them inside theirs.
- small-text: ``strategy.query(clf, dataset, indices_unlabeled, indices_labeled, y, n=b)``.
  Its confidence strategies call ``clf.predict_proba(dataset)`` on the whole pool;
  its embedding strategies (BADGE, CAL, GreedyCoreset, EmbeddingKMeans) call
  ``clf.embed(dataset[unlabeled + labeled], return_proba=True)`` (a copy of the rows
  plus LR probabilities) inside ``query``.
- scikit-activeml: ``strategy.query(X, y_with_nan, clf, fit_clf=False, batch_size=b)``
  (``CoreSet.query(X, y, batch_size=b)``, it takes no classifier); the classifier's
  ``predict_proba`` (input validation + LR) runs inside ``query``.
- Outside every timed region: building the pool, fitting the LR, constructing the
  strategy objects and the peers' dataset containers (small-text ``SklearnDataset``,
  scikit-activeml's ``y`` with NaN for unlabeled), seeding.

Strategy correspondence (ours | small-text 1.4.1 | scikit-activeml 1.0.1)
-----------------------------------------------------------------------
least confidence: least-confidence | LeastConfidence | UncertaintySampling("least_confident")
entropy:          entropy | PredictionEntropy | UncertaintySampling("entropy")
margin:           margin | BreakingTies | UncertaintySampling("margin_sampling")
BADGE:            badge | integrations.pytorch BADGE(num_classes=2) | Badge
                  (small-text's BADGE uses the raw embeddings for 2 classes, not gradient embeddings)
CAL:              cal (k = 10) | ContrastiveActiveLearning(k=10) | ContrastiveAL(n_neighbors=10)
                  (small-text searches neighbours over the whole pool, scikit-activeml over L
                  without L2 normalisation; ours over L, normalised, as the paper)
core-set:         coreset (Euclidean) | GreedyCoreset("euclidean", normalize=False) | CoreSet
k-means:          bert-km (L2-normalised; MiniBatchKMeans above 20k rows) | EmbeddingKMeans(normalize=True)
                  (sklearn KMeans, Lloyd) | - (no BERT-KM-like strategy)

Each cell is the median of ``--repeats`` runs, interleaved in one process: for each
repeat, ours, then small-text, then scikit-activeml. Before the repeats, each call runs
once as a warm-up, not counted if it took under 1 s (a slower call's first run counts as
its first repeat). A cell whose first run takes over
``--single-run-above`` seconds is not repeated (marked ``1 run``). A (library, strategy)
that took over 20 s at one N is skipped at larger N; N = 1,000,000 runs ours, and a
peer's strategy only if it finished N = 100,000 within 20 s, in the same process or, for
a separate 1M run, as listed by ``--allow-at-1m PEER:STRATEGY,...`` from an earlier run.

Floors, measured in the same process:
- ``numpy entropy top-k``: entropy of given (N, 2) float64 probabilities + argpartition
  top-b, the least an uncertainty strategy can do once probabilities exist;
- ``LR predict_proba + entropy top-k``: the same plus the LR's predict_proba over the
  pool, the least the timed call as defined above can do;
- ``GEMM 1500 x N x 384`` and ``+ top-k (k=10)``: the anchor search of ALVIN as one
  blocked float32 GEMM (squared distances up to a per-anchor constant) with a per-block
  argpartition and merge;
- ``LR predict_proba + GEMM N x 200 x 384``: the pool's probabilities and its inner
  products with the labeled rows in blocks of 4,096, the least an exact CAL (k-NN from
  the pool to L, then KL of predictions) has to compute.
The ``ours, probabilities given`` rows time our uncertainty strategies with the
RoundState's probability cache already warm, the like-for-like comparison with the
first floor.

    .venv/bin/python benchmarks/peers.py [--sizes 10000,100000] [--repeats 3]
        [--strategies least-confidence,entropy,...] [--peers small-text,scikit-activeml|none]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
from sklearn.linear_model import LogisticRegression

from anchoral.models.base import FitReport
from anchoral.strategies import RoundState, make_strategy

N_FEATURES = 384
N_CLASSES = 2
N_LABELED = 200
BATCH = 100
CLASS_SHIFT = 1.25
MINORITY_SHARE = 0.25
TARGET_ANCHORS = 1500
ANCHOR_K = 10
SKIP_AFTER_SECONDS = 20.0
WARMUP_BELOW_SECONDS = 1.0
ONE_MILLION = 1_000_000
PEERS = ("small-text", "scikit-activeml")

# key -> (label, our strategy name)
SHARED = {
    "least-confidence": ("least confidence", "least-confidence"),
    "entropy": ("entropy", "entropy"),
    "margin": ("margin", "margin"),
    "badge": ("BADGE", "badge"),
    "cal": ("CAL", "cal"),
    "coreset": ("core-set (greedy)", "coreset"),
    "kmeans": ("k-means (bert-km)", "bert-km"),
}
UNCERTAINTY = ("least-confidence", "entropy", "margin")


# ---------------------------------------------------------------- workload


class LogRegAdapter:
    """Our Model interface over a fitted scikit-learn LogisticRegression: embed = identity."""

    n_classes = N_CLASSES

    def __init__(self, estimator: LogisticRegression):
        self.estimator = estimator

    def fit(self, features, labels):  # pragma: no cover - the benchmark never refits
        raise NotImplementedError("the benchmark's model is fitted once, outside the timed calls")

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        return self.estimator.predict_proba(features)

    def embed(self, features: np.ndarray) -> np.ndarray:
        return features

    def proba_from_embedding(self, embeddings: np.ndarray) -> np.ndarray:
        return self.estimator.predict_proba(embeddings)


class SmallTextAdapter:
    """small-text's classifier interface over the same fitted LogisticRegression."""

    def __init__(self, estimator: LogisticRegression):
        self.estimator = estimator

    def predict_proba(self, dataset) -> np.ndarray:
        return self.estimator.predict_proba(dataset.x)

    def embed(self, dataset, return_proba=False, pbar=None, **kwargs):
        embeddings = dataset.x
        if return_proba:
            return embeddings, self.estimator.predict_proba(embeddings)
        return embeddings


@dataclass
class Workload:
    features: np.ndarray
    labels: np.ndarray  # true labels of the whole pool (only the labeled ones are ever shown)
    labeled: np.ndarray
    labeled_labels: np.ndarray
    unlabeled: np.ndarray
    estimator: LogisticRegression
    model: LogRegAdapter
    fit_report: FitReport
    n_minority: int
    alvin_k: int
    peers: dict = field(default_factory=dict)  # peer name -> its prepared inputs


def synthetic_pool(size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two overlapping Gaussian classes in 384 dimensions, float32 features, int labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, N_CLASSES, size)
    direction = rng.normal(size=N_FEATURES)
    direction /= np.linalg.norm(direction)
    features = rng.standard_normal(size=(size, N_FEATURES), dtype=np.float32)
    features += ((2 * labels - 1)[:, None] * CLASS_SHIFT * direction).astype(np.float32)
    return features, labels


def minority_fit_report(labeled_labels: np.ndarray, seed: int = 0) -> tuple[FitReport, int, int]:
    """A two-"epoch" FitReport in which a random MINORITY_SHARE of each class is never correct.

    Returns the report, the number of minority examples and K (anchors per pair) such that
    ALVIN forms about TARGET_ANCHORS anchors (pairs per class = min(minority, majority)).
    """
    rng = np.random.default_rng(seed)
    never_correct = np.zeros(labeled_labels.size, dtype=bool)
    n_pairs = 0
    for c in range(N_CLASSES):
        members = np.flatnonzero(labeled_labels == c)
        n_minority = int(round(MINORITY_SHARE * members.size))
        never_correct[rng.choice(members, n_minority, replace=False)] = True
        n_pairs += min(n_minority, members.size - n_minority)
    correctness = np.tile(~never_correct, (2, 1))
    report = FitReport(
        epoch_losses=(0.7, 0.6), first_loss=0.7, final_loss=0.6, correctness=correctness,
        stop_reason="epoch_cap", epochs=2, steps=2, seconds=0.0,
        extra={"note": "synthetic correctness for the ALVIN benchmark row"},
    )
    return report, int(never_correct.sum()), max(1, int(round(TARGET_ANCHORS / max(n_pairs, 1))))


def build_workload(size: int, peers: tuple[str, ...] = PEERS, seed: int = 0) -> Workload:
    """The pool, the labeled set, the one fitted LR and every library's view of it."""
    features, labels = synthetic_pool(size, seed)
    rng = np.random.default_rng(seed + 1)
    labeled = np.concatenate([
        rng.choice(np.flatnonzero(labels == c), N_LABELED // N_CLASSES, replace=False) for c in range(N_CLASSES)
    ])
    labeled_labels = labels[labeled]
    estimator = LogisticRegression(C=1.0, max_iter=1000).fit(features[labeled], labeled_labels)
    report, n_minority, alvin_k = minority_fit_report(labeled_labels, seed)
    mask = np.ones(size, dtype=bool)
    mask[labeled] = False
    workload = Workload(
        features=features, labels=labels, labeled=labeled, labeled_labels=labeled_labels,
        unlabeled=np.flatnonzero(mask), estimator=estimator, model=LogRegAdapter(estimator),
        fit_report=report, n_minority=n_minority, alvin_k=alvin_k,
    )
    for peer in peers:
        prepared = PREPARE[peer](workload)
        if prepared is not None:
            workload.peers[peer] = prepared
    return workload


def _prepare_small_text(workload: Workload):
    try:
        from small_text import LABEL_UNLABELED, SklearnDataset
    except ImportError:
        return None
    y = np.full(workload.features.shape[0], LABEL_UNLABELED, dtype=np.int64)
    y[workload.labeled] = workload.labeled_labels
    dataset = SklearnDataset(workload.features, y, target_labels=np.arange(N_CLASSES))
    return {"dataset": dataset, "clf": SmallTextAdapter(workload.estimator)}


def _prepare_skactiveml(workload: Workload):
    try:
        from skactiveml.classifier import SklearnClassifier
    except ImportError:
        return None
    y = np.full(workload.features.shape[0], np.nan)
    y[workload.labeled] = workload.labeled_labels
    clf = SklearnClassifier(LogisticRegression(C=1.0, max_iter=1000), classes=np.arange(N_CLASSES))
    clf.fit(workload.features[workload.labeled], workload.labeled_labels)
    check = workload.features[workload.labeled]
    difference = np.abs(clf.predict_proba(check) - workload.estimator.predict_proba(check)).max()
    clf.estimator_ = workload.estimator  # the very same fitted LR as ours and small-text's
    return {"X": workload.features, "y": y, "clf": clf, "refit_difference": float(difference)}


PREPARE = {"small-text": _prepare_small_text, "scikit-activeml": _prepare_skactiveml}


# ---------------------------------------------------------------- the three sides


def ours_call(key: str, workload: Workload, alvin_k: int | None = None):
    """A function (seed) -> (indices, diagnostics) running one selection of ours."""
    strategy = make_strategy("alvin", n_anchors_per_pair=alvin_k) if key == "alvin" else make_strategy(SHARED[key][1])

    def run(seed: int):
        state = RoundState(workload.features, workload.labeled, workload.labeled_labels, workload.model,
                           workload.fit_report, N_CLASSES)
        selection = strategy.select(state, BATCH, np.random.default_rng(seed))
        return selection.indices, selection.diagnostics

    return run


def ours_warm_call(key: str, workload: Workload):
    """Ours with the RoundState's probability cache already filled (compare with the NumPy floor)."""
    strategy = make_strategy(SHARED[key][1])
    state = RoundState(workload.features, workload.labeled, workload.labeled_labels, workload.model,
                       workload.fit_report, N_CLASSES)
    state.pool_probabilities  # noqa: B018 - warm the cache outside the timed region

    def run(seed: int):
        return strategy.select(state, BATCH, np.random.default_rng(seed)).indices, {}

    return run


def small_text_call(key: str, workload: Workload):
    """small-text's query for ``key``, or None if it has no such strategy."""
    prepared = workload.peers.get("small-text")
    if prepared is None:
        return None
    from small_text import query_strategies as qs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # GreedyCoreset warns about its changed default metric
        factories = {
            "least-confidence": qs.LeastConfidence,
            "entropy": qs.PredictionEntropy,
            "margin": qs.BreakingTies,
            "cal": lambda: qs.ContrastiveActiveLearning(k=10, pbar=None),
            "coreset": lambda: qs.GreedyCoreset(distance_metric="euclidean", normalize=False),
            "kmeans": lambda: qs.EmbeddingKMeans(normalize=True),
        }
        if key == "badge":
            try:
                from small_text.integrations.pytorch.query_strategies import BADGE
            except Exception:  # its BADGE lives in the PyTorch integration
                return None
            factories["badge"] = lambda: BADGE(num_classes=N_CLASSES)
        if key not in factories:
            return None
        strategy = factories[key]()
    dataset, clf = prepared["dataset"], prepared["clf"]
    kwargs = {"pbar": None} if key in ("badge", "coreset", "kmeans") else {}

    def run(seed: int):
        np.random.seed(seed)  # small-text draws from NumPy's global generator
        indices = strategy.query(clf, dataset, workload.unlabeled, workload.labeled, workload.labeled_labels,
                                 n=BATCH, **kwargs)
        return np.asarray(indices), {}

    return run


def skactiveml_call(key: str, workload: Workload):
    """scikit-activeml's query for ``key``, or None if it has no such strategy."""
    prepared = workload.peers.get("scikit-activeml")
    if prepared is None:
        return None
    from skactiveml import pool

    methods = {"least-confidence": "least_confident", "entropy": "entropy", "margin": "margin_sampling"}
    X, y, clf = prepared["X"], prepared["y"], prepared["clf"]
    if key in methods:
        def query(seed):
            return pool.UncertaintySampling(method=methods[key], random_state=seed).query(
                X, y, clf, fit_clf=False, batch_size=BATCH)
    elif key == "badge":
        def query(seed):
            return pool.Badge(random_state=seed).query(X, y, clf, fit_clf=False, batch_size=BATCH)
    elif key == "cal":
        def query(seed):
            return pool.ContrastiveAL(nearest_neighbors_dict={"n_neighbors": 10}, random_state=seed).query(
                X, y, clf, fit_clf=False, batch_size=BATCH)
    elif key == "coreset":
        def query(seed):
            return pool.CoreSet(random_state=seed).query(X, y, batch_size=BATCH)
    else:
        return None

    def run(seed: int):
        return np.asarray(query(seed)), {}

    return run


SIDES = {"small-text": small_text_call, "scikit-activeml": skactiveml_call}


# ---------------------------------------------------------------- timing


def check_batch(indices: np.ndarray, workload: Workload, who: str) -> None:
    """b distinct unlabeled pool indices, or an AssertionError naming who broke it."""
    indices = np.asarray(indices, dtype=np.int64).ravel()
    mask = np.zeros(workload.features.shape[0], dtype=bool)
    mask[workload.unlabeled] = True
    if indices.size != BATCH or np.unique(indices).size != BATCH or not mask[indices].all():
        raise AssertionError(f"{who} returned {indices.size} indices, {np.unique(indices).size} distinct, "
                             f"{int(mask[indices].sum())} unlabeled; expected {BATCH} distinct unlabeled")


@dataclass
class Cell:
    times: list = field(default_factory=list)
    error: str | None = None
    diagnostics: dict = field(default_factory=dict)
    done: bool = False

    @property
    def seconds(self) -> float | None:
        return statistics.median(self.times) if self.times else None


def timed(run, seed: int) -> tuple[float, np.ndarray, dict]:
    started = time.perf_counter()
    indices, diagnostics = run(seed)
    return time.perf_counter() - started, indices, diagnostics


def interleaved(calls: dict[str, object], workload: Workload, repeats: int, single_run_above: float,
                label: str) -> dict[str, Cell]:
    """Median time of each call, the calls interleaved within every repeat.

    Round 0 is a warm-up: a call that finishes it in under ``WARMUP_BELOW_SECONDS`` is run
    ``repeats`` more times and the warm-up is not counted (at a few milliseconds a first
    call's page faults and cold caches dominate); a slower call's first run counts as its
    first repeat, so no slow call runs an extra time."""
    cells = {who: Cell() for who in calls}
    for round_number in range(repeats + 1):
        for who, run in calls.items():
            cell = cells[who]
            if run is None or cell.done or cell.error or len(cell.times) >= repeats:
                continue
            try:
                seconds, indices, diagnostics = timed(run, round_number)
                check_batch(indices, workload, f"{who} {label}")
            except Exception as exc:  # report it and keep timing the others
                cell.error = f"{type(exc).__name__}: {exc}"[:300]
                print(f"    {label} {who}: {cell.error}", flush=True)
                continue
            if diagnostics:
                cell.diagnostics = diagnostics
            if round_number == 0 and seconds < WARMUP_BELOW_SECONDS:
                print(f"    {label} {who} warm-up: {seconds:.3f} s", flush=True)
                continue
            cell.times.append(seconds)
            if len(cell.times) == 1 and seconds > single_run_above:
                cell.done = True
            print(f"    {label} {who} run {len(cell.times)}: {seconds:.3f} s", flush=True)
    return cells


def median_of(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def entropy_top_k(probabilities: np.ndarray, batch: int) -> np.ndarray:
    p = np.clip(probabilities, 1e-300, 1.0)
    scores = -(probabilities * np.log(p)).sum(axis=1)
    return np.argpartition(scores, scores.size - batch)[scores.size - batch :]


def gemm_top_k(anchors: np.ndarray, points: np.ndarray, k: int, block: int = 16384, top_k: bool = True):
    """k nearest points per anchor: blocked float32 GEMM (anchors x block, so each anchor's row is
    contiguous), squared distances up to the per-anchor constant, argpartition per row and a merge."""
    best_d = best_i = None
    for start in range(0, points.shape[0], block):
        chunk = points[start : start + block]
        distances = anchors @ chunk.T  # (anchors, rows) float32
        if not top_k:
            continue
        distances *= -2.0
        distances += np.einsum("ij,ij->i", chunk, chunk)[None, :]
        part = np.argpartition(distances, k - 1, axis=1)[:, :k]
        part_d = np.take_along_axis(distances, part, axis=1)
        if best_d is None:
            best_d, best_i = part_d, part + start
        else:
            both_d = np.concatenate([best_d, part_d], axis=1)
            both_i = np.concatenate([best_i, part + start], axis=1)
            keep = np.argpartition(both_d, k - 1, axis=1)[:, :k]
            best_d, best_i = np.take_along_axis(both_d, keep, axis=1), np.take_along_axis(both_i, keep, axis=1)
    return best_i  # (anchors, k) point positions, unordered; None without top_k


def floors(workload: Workload, repeats: int) -> dict[str, float]:
    features = workload.features
    probabilities = workload.estimator.predict_proba(features)
    unlabeled_probabilities = probabilities[workload.unlabeled]
    anchors = np.random.default_rng(0).standard_normal((TARGET_ANCHORS, N_FEATURES), dtype=np.float32)
    unlabeled_features = features[workload.unlabeled]
    result = {
        "numpy entropy top-k": median_of(lambda: entropy_top_k(unlabeled_probabilities, BATCH), repeats),
        "LR predict_proba + entropy top-k": median_of(
            lambda: entropy_top_k(workload.estimator.predict_proba(features)[workload.unlabeled], BATCH), repeats),
        f"GEMM {TARGET_ANCHORS} x N x {N_FEATURES}": median_of(
            lambda: gemm_top_k(anchors, unlabeled_features, ANCHOR_K, top_k=False), repeats),
        f"GEMM {TARGET_ANCHORS} x N x {N_FEATURES} + top-k (k={ANCHOR_K})": median_of(
            lambda: gemm_top_k(anchors, unlabeled_features, ANCHOR_K), repeats),
        CAL_FLOOR: median_of(lambda: (workload.estimator.predict_proba(features),
                                      gemm_blocks(features, features[workload.labeled])), repeats),
    }
    return result


CAL_FLOOR = f"LR predict_proba + GEMM N x {N_LABELED} x {N_FEATURES}"


def gemm_blocks(queries: np.ndarray, database: np.ndarray, block: int = 4096) -> None:
    """Every query's inner products with a small database, in row blocks of the queries: the
    product any exact k-NN from the pool to the labeled set (CAL, core-set) has to compute."""
    for start in range(0, queries.shape[0], block):
        queries[start : start + block] @ database.T


# ---------------------------------------------------------------- driver


def load() -> str:
    return "load average " + ", ".join(f"{value:.2f}" for value in os.getloadavg())


def benchmark_size(size: int, keys: list[str], peers: tuple[str, ...], repeats: int, single_run_above: float,
                   too_slow: dict[tuple[str, str], int], fast_at_100k: set[tuple[str, str]]):
    print(f"\nN = {size:,}: building the workload ({load()})", flush=True)
    started = time.perf_counter()
    workload = build_workload(size, peers)
    print(f"  built in {time.perf_counter() - started:.1f} s; peers available: "
          f"{', '.join(workload.peers) or 'none'}", flush=True)
    if "scikit-activeml" in workload.peers:
        print(f"  scikit-activeml's own fit vs the shared LR: max |dp| = "
              f"{workload.peers['scikit-activeml']['refit_difference']:.2e} (the shared LR is used)")
    results: dict[str, dict[str, Cell | str]] = {}
    for key in keys:
        calls = {"ours": ours_call(key, workload)}
        notes = {}
        for peer in PEERS:
            if peer not in peers or peer not in workload.peers:
                continue
            call = SIDES[peer](key, workload)
            if call is None:
                continue
            if (peer, key) in too_slow:
                notes[peer] = f"skipped (>{SKIP_AFTER_SECONDS:.0f} s at N={too_slow[(peer, key)]:,})"
            elif size >= ONE_MILLION and (peer, key) not in fast_at_100k:
                notes[peer] = f"skipped (not known to finish N=100,000 within {SKIP_AFTER_SECONDS:.0f} s)"
            else:
                calls[peer] = call
        for peer, note in notes.items():
            print(f"    {SHARED[key][0]} {peer}: {note}", flush=True)
        cells = interleaved(calls, workload, repeats, single_run_above, SHARED[key][0])
        results[key] = {**cells, **notes}
        for who, cell in cells.items():
            if who != "ours" and cell.times and max(cell.times) > SKIP_AFTER_SECONDS:
                too_slow.setdefault((who, key), size)
            elif who != "ours" and cell.times and size == 100_000:
                fast_at_100k.add((who, key))
    extras = {}
    for key in keys:
        if key in UNCERTAINTY:
            cells = interleaved({"ours": ours_warm_call(key, workload)}, workload, repeats, single_run_above,
                                f"{SHARED[key][0]} (probabilities given)")
            extras[f"{SHARED[key][0]}, ours, probabilities given"] = cells["ours"]
    alvin = interleaved({"ours": ours_call("alvin", workload, workload.alvin_k)}, workload, repeats,
                        single_run_above, f"ALVIN K={workload.alvin_k}")["ours"]
    print(f"  floors ({load()})", flush=True)
    floor = floors(workload, repeats)
    for name, seconds in floor.items():
        print(f"    {name}: {seconds:.4f} s", flush=True)
    summary = {"alvin_k": workload.alvin_k, "n_minority": workload.n_minority, "n_unlabeled": workload.unlabeled.size}
    return summary, results, extras, alvin, floor


def fmt(seconds: float | None, cell=None) -> str:
    if seconds is None:
        return "-"
    text = f"{seconds:.4f}" if seconds < 0.1 else f"{seconds:.3f}" if seconds < 10 else f"{seconds:.1f}"
    if cell is not None and len(cell.times) == 1 and cell.done:
        text += " (1 run)"
    return text


def peer_text(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if value.error:
        return "error: " + value.error[:60]
    return fmt(value.seconds, value)


def ratio(value, ours: float | None) -> str:
    if not isinstance(value, Cell) or value.seconds is None or not ours:
        return "-"
    return f"{value.seconds / ours:.1f}x"


def print_report(size: int, keys: list[str], summary, results, extras, alvin, floor, peers) -> None:
    print(f"\n### N = {size:,} (d = {N_FEATURES}, {N_LABELED} labeled, b = {BATCH}, median of runs; "
          f"ratio = peer / ours)\n")
    print("| strategy | ours (s) | small-text (s) | small-text / ours | scikit-activeml (s) | scikit-activeml / ours |")
    print("|---|---|---|---|---|---|")
    for key in keys:
        row = results[key]
        ours = row["ours"]
        ours_seconds = ours.seconds if not ours.error else None
        cells = [peer_text(row.get(peer)) if peer in peers else "-" for peer in PEERS]
        print(f"| {SHARED[key][0]} | {fmt(ours_seconds, ours) if not ours.error else 'error'} | {cells[0]} | "
              f"{ratio(row.get('small-text'), ours_seconds)} | {cells[1]} | "
              f"{ratio(row.get('scikit-activeml'), ours_seconds)} |")
    print()
    numpy_floor = floor["numpy entropy top-k"]
    call_floor = floor["LR predict_proba + entropy top-k"]
    for name, cell in extras.items():
        print(f"- {name}: {fmt(cell.seconds)} s = {cell.seconds / numpy_floor:.1f}x the NumPy floor")
    for key in keys:
        if key in UNCERTAINTY and results[key]["ours"].seconds:
            print(f"- {SHARED[key][0]}, ours, full call: {results[key]['ours'].seconds / call_floor:.2f}x the "
                  f"'LR predict_proba + entropy top-k' floor")
    if "cal" in results and results["cal"]["ours"].seconds:
        print(f"- CAL, ours, full call: {results['cal']['ours'].seconds / floor[CAL_FLOOR]:.2f}x the "
              f"'{CAL_FLOOR}' floor")
    d = alvin.diagnostics
    alvin_text = "error: " + alvin.error if alvin.error else (
        f"{fmt(alvin.seconds)} s with {d.get('n_anchors')} anchors (K = {summary['alvin_k']}, {d.get('n_pairs')} pairs "
        f"from {summary['n_minority']} minority), {d.get('candidate_set_size')} candidates, fallbacks "
        f"{d.get('fallbacks')}; anchor creation {d.get('seconds_anchor_creation', float('nan')):.3f} s, example "
        f"selection {d.get('seconds_example_selection', float('nan')):.3f} s (last run)")
    print(f"- ALVIN (ours only): {alvin_text}")
    gemm = f"GEMM {TARGET_ANCHORS} x N x {N_FEATURES}"
    flops = 2.0 * TARGET_ANCHORS * summary["n_unlabeled"] * N_FEATURES
    print("- floors: " + "; ".join(f"{name} {seconds:.4f} s" for name, seconds in floor.items())
          + f" ({flops / floor[gemm] / 1e9:.0f} GFLOP/s for the GEMM alone)")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated pool sizes (e.g. 2000 to smoke-test)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per cell; the median is reported")
    parser.add_argument("--strategies", default=",".join(SHARED),
                        help=f"comma-separated subset of {','.join(SHARED)}")
    parser.add_argument("--peers", default=",".join(PEERS), help=f"comma-separated subset of {','.join(PEERS)}, or none")
    parser.add_argument("--allow-at-1m", default="",
                        help="comma-separated PEER:STRATEGY pairs that finished N=100,000 within 20 s in an earlier "
                             "run (e.g. scikit-activeml:entropy); they run at N=1,000,000 without re-running 100k")
    parser.add_argument("--single-run-above", type=float, default=60.0,
                        help="a cell whose first run exceeds this many seconds is not repeated")
    arguments = parser.parse_args(argv)
    sizes = sorted(int(size) for size in arguments.sizes.split(","))
    keys = [key.strip() for key in arguments.strategies.split(",") if key.strip()]
    unknown = [key for key in keys if key not in SHARED]
    if unknown:
        parser.error(f"unknown strategies {unknown}; choose from {','.join(SHARED)}")
    peers = () if arguments.peers.strip() == "none" else tuple(p.strip() for p in arguments.peers.split(",") if p.strip())
    if any(peer not in PEERS for peer in peers):
        parser.error(f"unknown peers {peers}; choose from {','.join(PEERS)} or none")

    print(f"peers benchmark: d={N_FEATURES}, {N_CLASSES} classes, {N_LABELED} labeled, b={BATCH}, "
          f"median of {arguments.repeats}, {os.cpu_count()} CPUs; start {load()}", flush=True)
    for peer, module in (("small-text", "small_text"), ("scikit-activeml", "skactiveml")):
        if peer in peers:
            try:
                imported = __import__(module)
                print(f"  {peer} {getattr(imported, '__version__', '?')}")
            except ImportError:
                print(f"  {peer}: not importable (pip install -e '.[bench]'); its columns print '-'")
    too_slow: dict[tuple[str, str], int] = {}
    fast_at_100k: set[tuple[str, str]] = set()  # peers run at 1M only if they finished 100k within 20 s
    for pair in filter(None, (item.strip() for item in arguments.allow_at_1m.split(","))):
        peer, _, key = pair.partition(":")
        if peer not in PEERS or key not in SHARED:
            parser.error(f"--allow-at-1m: {pair!r} is not PEER:STRATEGY")
        fast_at_100k.add((peer, key))
    reports = []
    for size in sizes:
        reports.append((size, *benchmark_size(size, keys, peers, arguments.repeats, arguments.single_run_above,
                                              too_slow, fast_at_100k)))
    for size, summary, results, extras, alvin, floor in reports:
        print_report(size, keys, summary, results, extras, alvin, floor, peers)
    print(f"\nend {load()}")


if __name__ == "__main__":
    main()
