"""``anchoral run CONFIG.toml``: run a study's grid into a resumable run directory.

Order of work:
1. validate the config, build every benchmark variant and plan every loop, so a bad
   value fails before any run starts;
2. open the run directory's results store (refusing an incompatible one) and skip
   the runs it already holds;
3. embed each benchmark once (cached on disk), store what the analyses after the runs need
   of it (the pool's features and the probing set, ``probing``), fit the reference panel's missing fits
   (erm-all, oracle-balanced; ``references``) and the reference model of ALVIN Table 3's
   uncertainty on the whole labeled pool, all stored, so each is done once;
4. run the remaining runs, in this process or in ``jobs`` worker processes, with one
   progress bar over all their rounds; each finished run is committed at once, with its
   model's f_enc of the probing set at every checkpoint.

Only this (parent) process writes the store; workers return their rows. A run killed
half-way leaves nothing behind and is redone by the next invocation.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import queue
import threading
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from anchoral.data.benchmarks import load_benchmark
from anchoral.encoders.registry import make_encoder
from anchoral.errors import AnchoralError, ValidationError
from anchoral.execution import Executor
from anchoral.experiments.config import ConfigError, RunPlan, StudyConfig, Variant, canonical_json
from anchoral.experiments.encoded import EncodedBenchmark, encode_benchmark
from anchoral.experiments.probing import SNAPSHOT_DTYPE, ProbingSet, SnapshotRecorder, probing_set, snapshot_sizes
from anchoral.experiments.references import fit_reference
from anchoral.experiments.results import ResultsStore
from anchoral.experiments.simulate import RunSpec, simulate
from anchoral.loop import ActiveLearningLoop
from anchoral.metrics.batch import batch_diversity, batch_representativeness, batch_uncertainty, predictive_entropy
from anchoral.models import make_model
from anchoral.progress import progress_bar
from anchoral.strategies import make_strategy

DEFAULT_RUNS_DIR = Path("runs")
REFERENCE_SEED = 0
REFERENCE_FOLDS = 2


class RunFailures(AnchoralError):
    """Some runs raised; the others were stored. The message lists each failed run."""


@dataclass
class StudySummary:
    run_dir: Path
    n_runs: int
    n_skipped: int
    n_completed: int = 0
    seconds: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)


def benchmark_key(variant: Variant) -> str:
    return canonical_json(variant.key())


def reference_key(benchmark: Variant, model: Variant) -> str:
    return canonical_json({"benchmark": benchmark.key(), "model": model.key(), "seed": REFERENCE_SEED,
                           "folds": REFERENCE_FOLDS})


def default_run_dir(config: StudyConfig) -> Path:
    return DEFAULT_RUNS_DIR / config.name


# -- validation that needs the data ---------------------------------------------------------
def plan_rounds(config: StudyConfig) -> dict[str, int]:
    """Build every benchmark variant and plan its loop; return rounds per run by benchmark key.

    Raises ConfigError naming the config entry whose values do not fit the data."""
    rounds = {}
    for variant in config.benchmarks:
        try:
            benchmark = load_benchmark(variant.name, **variant.params)
        except ValidationError as exc:
            raise ConfigError(f"{variant.where} ({variant.label}): {exc}") from None
        n_classes = len(benchmark.class_names)
        for model in config.models:
            loop = ActiveLearningLoop(make_strategy("random"), make_model(model.name, n_classes, **model.params),
                                      config.loop)
            try:
                schedule = loop.plan(len(benchmark.pool))
            except ValidationError as exc:
                raise ConfigError(f"loop does not fit {variant.where} ({variant.label}, pool of "
                                  f"{len(benchmark.pool)}): {exc}") from None
            rounds[benchmark_key(variant)] = len(schedule)
    return rounds


# -- one run (in this process or a worker) --------------------------------------------------
_ENCODED: dict[str, EncodedBenchmark] = {}
_PROBING: dict[str, ProbingSet | str] = {}
_EVENTS = None


def encoded_benchmark(variant: Variant, *, progress: bool = False, executor: Executor | None = None) -> EncodedBenchmark:
    """The benchmark variant with its features, built once per process (features from the disk cache;
    texts it lacks are encoded through ``executor`` if given)."""
    key = benchmark_key(variant)
    if key not in _ENCODED:
        benchmark = load_benchmark(variant.name, **variant.params)
        encoder = make_encoder(variant.encoder, **variant.encoder_params)
        _ENCODED[key] = encode_benchmark(benchmark, encoder, progress=progress, executor=executor)
    return _ENCODED[key]


def probing_for(variant: Variant) -> ProbingSet | str:
    """The benchmark variant's probing set (built once per process), or the one-line reason it has none."""
    key = benchmark_key(variant)
    if key not in _PROBING:
        try:
            _PROBING[key] = probing_set(encoded_benchmark(variant))
        except ValidationError as exc:
            _PROBING[key] = str(exc)
    return _PROBING[key]


def store_benchmark_data(config: StudyConfig, store: ResultsStore, *, progress: bool = False,
                         executor: Executor | None = None) -> None:
    """Store, for each benchmark of ``config`` that lacks them, its pool (groups, group names and
    features as float16) and its probing set (ids, labels, attributes) or the reason it has none.
    The features go last: their presence says the rest is there."""
    for variant in config.benchmarks:
        key = benchmark_key(variant)
        if store.benchmark_data(key, "pool_features") is not None:
            continue
        encoded = encoded_benchmark(variant, progress=progress, executor=executor)
        probing = probing_for(variant)
        if isinstance(probing, ProbingSet):
            store.add_benchmark_data(key, "probing_set", {"ids": probing.ids, "labels": probing.labels,
                                                          "attributes": probing.attributes})
            # the frozen encoder's own features of the probing set: the extractability table's
            # "before any training" reference
            store.add_benchmark_data(key, "probing_features", np.asarray(probing.features).astype(SNAPSHOT_DTYPE))
        else:
            store.add_benchmark_data(key, "probing_error", probing)
        pool = encoded.benchmark.pool
        store.add_benchmark_data(key, "pool", {"labels": pool.labels, "groups": pool.groups,
                                               "group_names": np.asarray(encoded.benchmark.group_names),
                                               "minority_groups": np.asarray(encoded.benchmark.minority_groups,
                                                                             dtype=np.int64)})
        store.add_benchmark_data(key, "pool_features", np.asarray(encoded.pool_features).astype(SNAPSHOT_DTYPE))


def fit_reference_entropy(encoded: EncodedBenchmark, model: Variant, n_folds: int = REFERENCE_FOLDS) -> np.ndarray | None:
    """Predictive entropy of every pool example under a model trained on the labeled pool
    (ALVIN §5.1, after Yuan et al. 2020); None for models that do not take features.

    Cross-fitted: the pool is split into ``n_folds`` class-stratified folds and each fold's
    entropies come from a model trained on the other folds. A head trained on all of the
    pool memorises it (the stopping rule drives the training loss to 0.1%), which leaves
    every entropy near 0 and the measure useless; cross-fitting keeps the spirit (a model
    that has seen far more labels than any strategy) without scoring training points.
    """
    labels = encoded.benchmark.pool.labels
    features = encoded.pool_features
    probe = make_model(model.name, encoded.n_classes, seed=REFERENCE_SEED, **model.params)
    if getattr(probe, "input_kind", "features") != "features":
        return None
    rng = np.random.default_rng(REFERENCE_SEED)
    fold_of = np.empty(labels.size, dtype=np.int64)
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        fold_of[members] = np.arange(members.size) % n_folds
    entropy = np.empty(labels.size, dtype=np.float64)
    for fold in range(n_folds):
        held_out = fold_of == fold
        reference = make_model(model.name, encoded.n_classes, seed=REFERENCE_SEED, **model.params)
        reference.fit(features[~held_out], labels[~held_out])
        entropy[held_out] = predictive_entropy(reference.predict_proba(features[held_out]))
    return entropy


def batch_analysis(encoded: EncodedBenchmark, reference_entropy: np.ndarray | None):
    """ALVIN Table 3's measures of each selected batch, in the frozen encoder's feature space."""
    features = np.asarray(encoded.pool_features)
    pool = np.arange(features.shape[0])

    def analyse(labeled_before: np.ndarray, selected: np.ndarray) -> dict:
        unlabeled = np.setdiff1d(pool, labeled_before)
        measures = {
            "batch_diversity": batch_diversity(features, selected, unlabeled),
            "batch_representativeness": batch_representativeness(features, selected, unlabeled),
        }
        if reference_entropy is not None:
            measures["batch_uncertainty"] = batch_uncertainty(reference_entropy, selected)
        return measures

    return analyse


def execute_run(plan: RunPlan, reference_entropy: np.ndarray | None, on_round=None,
                executor: Executor | None = None) -> tuple[list[dict], float, float, dict[int, np.ndarray]]:
    """Run one plan (its pool-wide work through ``executor`` if given); return (rows, started_at, seconds,
    f_enc snapshots of the probing set by labeled-set size)."""
    started_at = time.time()
    started = time.perf_counter()
    encoded = encoded_benchmark(plan.benchmark)
    spec = RunSpec(strategy=plan.strategy.name, seed=plan.seed, loop=plan.loop, model=plan.model.name,
                   strategy_params=dict(plan.strategy.params), model_params=dict(plan.model.params))
    probing = probing_for(plan.benchmark)
    recorder = (SnapshotRecorder(probing, snapshot_sizes(plan.loop, len(encoded.benchmark.pool)))
                if isinstance(probing, ProbingSet) else None)
    rows = simulate(encoded, spec, on_round=on_round, batch_analysis=batch_analysis(encoded, reference_entropy),
                    executor=executor, after_fit=recorder)
    _add_minority_upsampling(rows, encoded.benchmark)
    return rows, started_at, time.perf_counter() - started, recorder.snapshots if recorder is not None else {}


def _add_minority_upsampling(rows: list[dict], benchmark) -> None:
    """Record which groups are the minority and their mean upsampling ratio (Tamkin et al. Fig. 9)."""
    names = [benchmark.group_names[group] for group in benchmark.minority_groups]
    if not names:
        return
    for row in rows:
        ratios = np.array([row.get(f"upsampling[{name}]", np.nan) for name in names], dtype=float)
        row["minority_groups"] = json.dumps(names)
        row["minority_upsampling"] = float(np.nanmean(ratios)) if not np.isnan(ratios).all() else float("nan")


def _worker_init(events, parent_pid: int) -> None:
    """Runs in each worker: report rounds through ``events``; exit if the parent dies (kill -9)."""
    global _EVENTS
    _EVENTS = events
    import torch

    torch.set_num_threads(1)

    def watch_parent():
        while True:
            if os.getppid() != parent_pid:
                os._exit(1)
            time.sleep(1.0)

    threading.Thread(target=watch_parent, daemon=True).start()


def _worker_run(plan: RunPlan, reference_entropy):
    events = _EVENTS
    rows, started_at, seconds, snapshots = execute_run(plan, reference_entropy, on_round=lambda record: events.put(1))
    return rows, started_at, seconds, f"pid {os.getpid()}", snapshots


# -- the study ------------------------------------------------------------------------------
def run_study(config: StudyConfig, out_dir: str | Path | None = None, *, jobs: int = 1, progress: bool = True,
              console=None) -> StudySummary:
    """Run every run of ``config`` not yet in the run directory; return what happened.

    With ``[execution] backend = "ray"`` the runs go one after another in this process and
    each run's pool encoding, prediction and search are spread over Ray workers."""
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValidationError(f"jobs must be a positive integer (worker processes); got {jobs!r}")
    if jobs > 1 and config.execution.backend != "local":
        raise ValidationError(f"jobs={jobs} cannot be combined with the {config.execution.backend!r} executor, which "
                              "already spreads each run's pool work over its workers; use jobs=1 (--jobs 1)")
    run_dir = Path(out_dir) if out_dir is not None else default_run_dir(config)
    rounds = plan_rounds(config)
    store = ResultsStore.for_study(run_dir, config)
    plans = config.runs()
    done = store.completed_run_ids()
    pending = [plan for plan in plans if plan.run_id not in done]
    stored_fits = store.panel_fit_ids()
    panel = [fit for fit in config.panel_fits() if fit.fit_id not in stored_fits]
    store.log_invocation(jobs=jobs, n_runs=len(plans), n_already_done=len(plans) - len(pending))
    summary = StudySummary(run_dir=run_dir, n_runs=len(plans), n_skipped=len(plans) - len(pending))
    say = console.print if console is not None else (lambda *args, **kwargs: None)
    say(f"study [bold]{config.name}[/bold]: {len(plans)} runs, {summary.n_skipped} already done (skipped), "
        f"{len(pending)} to run with {jobs} job(s) -> {run_dir}")
    if panel:
        fractions = ", ".join(f"{100 * f:g}%" for f in config.report_fractions())
        say(f"reference panel: {len(panel)} fit(s) to do (erm-all, and oracle-balanced at {fractions} of the pool; "
            "per benchmark, plain model and seed)")
    if not pending and not panel:
        store_benchmark_data(config, store, progress=progress)
        return summary
    started = time.perf_counter()
    with config.execution.make() as executor:
        store_benchmark_data(config, store, progress=progress, executor=executor)
        _fit_panel(panel, store, summary, progress=progress, executor=executor)
        references = _prepare(config, pending, store, progress=progress, say=say, executor=executor)
        total_rounds = sum(rounds[benchmark_key(plan.benchmark)] for plan in pending)
        with progress_bar(progress and bool(pending)) as bar:
            task = bar.add_task(_description(0, len(pending)), total=total_rounds)
            if jobs == 1:
                _run_here(pending, references, store, summary, bar, task, executor)
            else:
                _run_in_workers(pending, references, store, summary, bar, task, jobs)
    summary.seconds = time.perf_counter() - started
    if summary.failures:
        details = "\n".join(f"- {what}: {error}" for what, error in summary.failures)
        raise RunFailures(f"{len(summary.failures)} of {len(pending) + len(panel)} runs and reference fits failed "
                          f"(the others are stored; rerun the same command to retry only the failed ones):\n{details}")
    return summary


def _fit_panel(fits, store, summary, *, progress, executor) -> None:
    """Fit and store each reference-panel fit of ``fits`` (each stored at once, so a killed
    study keeps what it fitted); a fit that raises is recorded as a failure."""
    for benchmark in {canonical_json(fit.benchmark.key()): fit.benchmark for fit in fits}.values():
        encoded_benchmark(benchmark, progress=progress, executor=executor)
    with progress_bar(progress and bool(fits)) as bar:
        task = bar.add_task("reference panel", total=len(fits))
        for fit in fits:
            probing = probing_for(fit.benchmark)
            recorder = SnapshotRecorder(probing, set()) if isinstance(probing, ProbingSet) else None
            try:
                record = fit_reference(encoded_benchmark(fit.benchmark), fit.reference, fit.model.name,
                                       fit.model.params, fit.seed, fit.fraction,
                                       after_fit=None if recorder is None else recorder.keep)
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:  # one bad fit must not stop the runs
                summary.failures.append((fit.describe(), _error_text(exc)))
                continue
            store.add_panel_fit(fit, record, None if recorder is None else recorder.snapshots.get(-1))
            bar.advance(task)


def _prepare(config, pending, store, *, progress, say, executor) -> dict[str, np.ndarray | None]:
    """Embed each needed benchmark (disk cache) and fit/store each reference model once."""
    references = {}
    needed = {reference_key(plan.benchmark, plan.model): (plan.benchmark, plan.model) for plan in pending}
    for key, (benchmark, model) in needed.items():
        encoded = encoded_benchmark(benchmark, progress=progress, executor=executor)
        entropy = store.reference_entropy(key)
        if entropy is None:
            say(f"fitting the Table 3 reference models ({REFERENCE_FOLDS}-fold cross-fitted) on the pool of "
                f"{benchmark.label} ({len(encoded.benchmark.pool)} examples)")
            entropy = fit_reference_entropy(encoded, model)
            if entropy is not None:
                store.add_reference_entropy(key, entropy)
        references[key] = entropy
    return references


def _description(done: int, total: int) -> str:
    return f"runs {done}/{total} finished"


def _finish(plan, result, store, summary, bar, task, total) -> None:
    rows, started_at, seconds, worker, snapshots = result
    if store.add_run(plan, rows, started_at=started_at, seconds=seconds, worker=worker, representations=snapshots):
        summary.n_completed += 1
    bar.update(task, description=_description(summary.n_completed + len(summary.failures), total))


def _run_here(pending, references, store, summary, bar, task, executor) -> None:
    for plan in pending:
        entropy = references[reference_key(plan.benchmark, plan.model)]
        try:
            rows, started_at, seconds, snapshots = execute_run(plan, entropy, on_round=lambda record: bar.advance(task),
                                                               executor=executor)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # one bad run must not lose the others
            summary.failures.append((plan.describe(), _error_text(exc)))
            continue
        _finish(plan, (rows, started_at, seconds, f"pid {os.getpid()}", snapshots), store, summary, bar, task,
                len(pending))


def _run_in_workers(pending, references, store, summary, bar, task, jobs) -> None:
    context = multiprocessing.get_context("spawn")
    events = context.Queue()
    executor = ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_worker_init,
                                   initargs=(events, os.getpid()))
    try:
        futures = {executor.submit(_worker_run, plan, references[reference_key(plan.benchmark, plan.model)]): plan
                   for plan in pending}
        while futures:
            finished, _ = wait(futures, timeout=0.5, return_when=FIRST_COMPLETED)
            _drain(events, bar, task)
            for future in finished:
                plan = futures.pop(future)
                error = future.exception()
                if isinstance(error, BrokenProcessPool):
                    raise RunFailures(f"the worker processes died ({error}); {summary.n_completed} run(s) were "
                                      "stored. If this is a script, start it under `if __name__ == \"__main__\":` "
                                      "(workers are spawned); rerun the same command to resume") from error
                if error is not None:
                    summary.failures.append((plan.describe(), _error_text(error)))
                    continue
                _finish(plan, future.result(), store, summary, bar, task, len(pending))
        _drain(events, bar, task)
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def _drain(events, bar, task) -> None:
    while True:
        try:
            events.get_nowait()
        except queue.Empty:
            return
        bar.advance(task)


def _error_text(error: BaseException) -> str:
    if isinstance(error, AnchoralError):
        return f"{type(error).__name__}: {error}"
    lines = traceback.format_exception(type(error), error, error.__traceback__)
    return "".join(lines[-3:]).strip()
