"""One simulated run: a benchmark, a strategy, a seed -> one record per round."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np

from anchoral.execution import Executor
from anchoral.experiments.encoded import EncodedBenchmark
from anchoral.loop import ActiveLearningLoop, LoopConfig, SimulatedOracle, stratified_seed_set
from anchoral.metrics import accuracy, group_accuracies, upsampling_ratios
from anchoral.metrics.minority import minority_inference_quality
from anchoral.models import make_model
from anchoral.strategies import make_strategy


@dataclass(frozen=True)
class RunSpec:
    """What to run: a strategy with parameters, a seed, the loop and model settings."""

    strategy: str
    seed: int
    loop: LoopConfig = LoopConfig()
    model: str = "mlp"
    strategy_params: dict = field(default_factory=dict)
    model_params: dict = field(default_factory=dict)


class BenchmarkEvaluator:
    """Scores a fitted model on the benchmark's ID and OOD test sets, and what it acquired.

    Worst-group accuracy is taken over the OOD test set, which is balanced over the
    (label x attribute) groups (Sagawa et al. 2020's metric on a group-balanced set).
    """

    def __init__(self, encoded: EncodedBenchmark, n_seed: int, input_kind: str = "features"):
        self.encoded = encoded
        self.n_seed = n_seed
        benchmark = encoded.benchmark
        if input_kind == "texts":
            self.id_inputs, self.ood_inputs = benchmark.id_test.texts, benchmark.ood_test.texts
        else:
            self.id_inputs, self.ood_inputs = encoded.id_features, encoded.ood_features

    def __call__(self, model, labeled_indices: np.ndarray) -> dict:
        benchmark = self.encoded.benchmark
        n_groups = self.encoded.n_groups
        id_predictions = model.predict_proba(self.id_inputs).argmax(axis=1)
        ood_predictions = model.predict_proba(self.ood_inputs).argmax(axis=1)
        ood_groups = group_accuracies(benchmark.ood_test.labels, ood_predictions, benchmark.ood_test.groups, n_groups)
        id_groups = group_accuracies(benchmark.id_test.labels, id_predictions, benchmark.id_test.groups, n_groups)
        acquired = labeled_indices[self.n_seed :]
        ratios = upsampling_ratios(benchmark.pool.groups[acquired], benchmark.pool.groups, n_groups)
        metrics = {
            "id_accuracy": accuracy(benchmark.id_test.labels, id_predictions),
            "ood_accuracy": accuracy(benchmark.ood_test.labels, ood_predictions),
            "worst_group_accuracy": float(np.nanmin(ood_groups)),
        }
        for name, ood_value, id_value, ratio in zip(benchmark.group_names, ood_groups, id_groups, ratios):
            metrics[f"ood_group_accuracy[{name}]"] = float(ood_value)
            metrics[f"id_group_accuracy[{name}]"] = float(id_value)
            metrics[f"upsampling[{name}]"] = float(ratio)
        return metrics


def json_default(value):
    """``json.dumps`` fallback for NumPy values (arrays as lists, scalars as Python numbers)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def simulate(encoded: EncodedBenchmark, spec: RunSpec, *, on_round=None, batch_analysis=None,
             executor: Executor | None = None, after_fit=None) -> list[dict]:
    """Run one active-learning simulation and return one flat record per round.

    ``batch_analysis(labeled_before, selected) -> dict``, if given, adds its entries to
    the record of every round that selected a batch (``labeled_before`` = the pool
    indices labeled when the batch was chosen).

    Randomness: the seed set and the model's initial weights depend only on
    ``spec.seed`` (so every strategy starts from the same seed set and weights);
    the strategy draws from its own stream derived from the seed.

    ``executor`` (``anchoral.execution``) runs each round's pool-wide prediction and
    search; the records are the same as without it.

    ``after_fit(model, labeled_indices)``, if given, is called with each round's fitted
    model after it is evaluated (e.g. ``probing.SnapshotRecorder``, which keeps f_enc of a
    probing set at chosen rounds).
    """
    benchmark = encoded.benchmark
    pool_labels = benchmark.pool.labels
    model = make_model(spec.model, encoded.n_classes, seed=spec.seed, **spec.model_params)
    input_kind = getattr(model, "input_kind", "features")
    strategy = make_strategy(spec.strategy, **spec.strategy_params)
    loop = ActiveLearningLoop(strategy, model, spec.loop, executor=executor)
    pool_size = len(benchmark.pool)
    loop.plan(pool_size)
    seed_indices = stratified_seed_set(pool_labels, loop.seed_size(pool_size), encoded.n_classes,
                                       np.random.default_rng(spec.seed), min_per_class=spec.loop.min_seed_per_class)
    evaluator = BenchmarkEvaluator(encoded, n_seed=seed_indices.size, input_kind=input_kind)
    if after_fit is not None:
        evaluator = _then(evaluator, after_fit)
    state_counts: dict[int, dict] = {}  # a fine-tuned model's frozen-state cache counters after each round

    def after_round(record):
        cache = getattr(model, "frozen_states_", None)
        if cache is not None:
            state_counts[record.round] = dict(cache.stats)
        if on_round is not None:
            on_round(record)

    records = loop.run(encoded.pool_features, SimulatedOracle(pool_labels), np.random.default_rng([spec.seed, 1]),
                       seed_indices=seed_indices, evaluate=evaluator, on_round=after_round,
                       inputs=list(benchmark.pool.texts) if input_kind == "texts" else None)
    rows = []
    labeled = seed_indices
    for record in records:
        inference = {**_minority_inference(benchmark, record.diagnostics, labeled),
                     **_head_inference(benchmark, record.fit.extra, labeled)}
        analysis = batch_analysis(labeled, record.selected) if batch_analysis and record.selected.size else {}
        analysis.update(_state_counts(state_counts, record.round))
        labeled = np.concatenate([labeled, record.selected])
        rows.append({
            "benchmark": benchmark.name,
            "strategy": spec.strategy,
            "model": spec.model,
            "strategy_params": json.dumps(spec.strategy_params, sort_keys=True),
            "seed": spec.seed,
            "round": record.round,
            "n_labeled": record.n_labeled,
            "fraction_labeled": record.n_labeled / pool_size,
            **record.metrics,
            **inference,
            **analysis,
            "fit_seconds": record.fit_seconds,
            "select_seconds": record.select_seconds,
            "stop_reason": record.fit.stop_reason,
            "epochs": record.fit.epochs,
            "first_loss": record.fit.first_loss,
            "final_loss": record.fit.final_loss,
            "selected": record.selected.tolist(),
            **({"seed_indices": seed_indices.tolist()} if record.round == 0 else {}),
            "diagnostics": json.dumps(record.diagnostics, default=json_default, sort_keys=True),
            "loop_config": json.dumps(asdict(spec.loop), sort_keys=True),
        })
    return rows


def _state_counts(counts: dict[int, dict], round_number: int) -> dict:
    """What a round (fit, evaluation, pool pass) did with the frozen-state cache: states
    computed, served from memory, read from disk; nothing for a model without the cache."""
    if round_number not in counts:
        return {}
    before = counts.get(round_number - 1, {})
    return {f"frozen_states_{key}": int(value - before.get(key, 0))
            for key, value in counts[round_number].items() if key in ("computed", "reused", "from_disk")}


def _then(evaluate, after_fit):
    def evaluate_then(model, labeled_indices):
        metrics = evaluate(model, labeled_indices)
        after_fit(model, labeled_indices)
        return metrics

    return evaluate_then


def _minority_inference(benchmark, diagnostics: dict, labeled: np.ndarray) -> dict:
    """ALVIN Table 4: recall and precision of the strategy's inferred minority against
    the benchmark's true minority groups (the strategy itself never saw the groups)."""
    if "minority_indices" not in diagnostics or not benchmark.minority_groups:
        return {}
    truly_minority = np.isin(benchmark.pool.groups[labeled], benchmark.minority_groups)
    quality = minority_inference_quality(diagnostics["minority_indices"], labeled, truly_minority)
    return {"minority_recall": quality["recall"], "minority_precision": quality["precision"],
            "n_true_minority_labeled": quality["n_true_minority"], "n_inferred_minority": quality["n_inferred"]}


def _head_inference(benchmark, fit_extra: dict, labeled: np.ndarray) -> dict:
    """The robust head's inferred minority (``FitReport.extra``) scored against the true minority
    groups of the labeled set it was fitted on (ALVIN Table 4, extended to every inference)."""
    if "inferred_minority" not in fit_extra or not benchmark.minority_groups:
        return {}
    inferred = labeled[np.asarray(fit_extra["inferred_minority"], dtype=bool)]
    truly_minority = np.isin(benchmark.pool.groups[labeled], benchmark.minority_groups)
    quality = minority_inference_quality(inferred, labeled, truly_minority)
    return {"head_minority_recall": quality["recall"], "head_minority_precision": quality["precision"],
            "head_groups": fit_extra.get("groups", ""), "trained_head": fit_extra.get("trained_head", "")}
