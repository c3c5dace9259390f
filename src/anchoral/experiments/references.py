"""The reference panel: what every strategy comparison is read against, on the same
benchmark, seeds and model (trained with the plain ERM head).

- ``erm-all``: the model trained on every pool label, one fit per seed; a horizontal
  line in every fraction column (what labeling everything would buy).
- ``oracle-balanced``: the model trained on a group-balanced subsample of the pool of a
  checkpoint's size, drawn with the TRUE groups (after Idrissi et al. 2022's group
  subsampling, at the active-learning budget). A user never has these groups: it is an
  oracle, shown as one, and tells how far a budget can go when it is spent on balance.
- ``random`` at the same budget is a strategy, run by the loop like the others.

Like ``BenchmarkEvaluator``, the builders here read the benchmark's true groups
(``Split.groups``); nothing a strategy sees is built from them. Reference rows are
kept apart from the strategies' rows, so gains and label efficiency never count them.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from anchoral.errors import ValidationError
from anchoral.experiments.encoded import EncodedBenchmark
from anchoral.experiments.simulate import BenchmarkEvaluator
from anchoral.loop import resolve_size, take
from anchoral.models import make_model
from anchoral.models.robust import plain_model_params

ERM_ALL = "erm-all"
ORACLE_BALANCED = "oracle-balanced"
PANEL_LABELS = {ERM_ALL: "erm-all (every pool label)", ORACLE_BALANCED: "oracle-balanced (oracle)"}
"""How each reference is named in tables and figures; the oracle says it is one."""
MISSING_RANDOM = ("random was not among the strategies, so there is no random sampling at the same budget to "
                  "read the strategies against; add it to the strategies for that comparison.")
SAMPLE_STREAM = 2
"""Random stream of the oracle-balanced samples, ``[seed, 2, size]`` (a run draws its seed set
from ``seed`` and its strategy's choices from ``[seed, 1]``)."""


def balanced_group_counts(supply, size: int) -> np.ndarray:
    """How many examples of each group a group-balanced sample of ``size`` takes, given
    ``supply[g]`` examples of group g in the pool.

    Every group gets an equal share; a group with fewer examples than its share gives
    all it has and the rest is shared evenly among the others, until every share fits.
    When ``size`` does not divide evenly, the groups with the largest supply (lower
    group id first among equals) take one more each.
    """
    supply = np.asarray(supply)
    if supply.ndim != 1 or supply.size == 0 or not np.issubdtype(supply.dtype, np.integer) or (supply < 0).any():
        raise ValidationError(f"supply must be a non-empty 1-D array of non-negative group sizes; got {supply!r}")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not 0 < size <= supply.sum():
        raise ValidationError(f"size must be an integer in [1, {int(supply.sum())}] (the pool's size); got {size!r}")
    counts = np.zeros(supply.size, dtype=np.int64)
    open_groups = supply > 0
    remaining, share = int(size), 0
    while open_groups.any():
        share = remaining // int(open_groups.sum())
        short = open_groups & (supply <= share)
        if not short.any():
            break
        counts[short] = supply[short]
        remaining -= int(supply[short].sum())
        open_groups &= ~short
    counts[open_groups] = share
    extra = remaining - share * int(open_groups.sum())
    by_supply = np.argsort(-np.where(open_groups, supply, -1), kind="stable")
    counts[by_supply[:extra]] += 1
    return counts


def oracle_balanced_sample(groups, size: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted pool indices of a group-balanced sample of ``size``, drawn with the TRUE
    ``groups`` (``balanced_group_counts`` per group, uniformly within each group).

    An evaluator-side reference only: it reads the benchmark's ground-truth groups,
    which no strategy, and no user of a real deployment, ever has.
    """
    groups = np.asarray(groups)
    if groups.ndim != 1 or not np.issubdtype(groups.dtype, np.integer) or (groups < 0).any():
        raise ValidationError(f"groups must be a 1-D array of non-negative group ids; got dtype {groups.dtype}, "
                              f"shape {groups.shape}")
    counts = balanced_group_counts(np.bincount(groups), size)
    chosen = [rng.choice(np.flatnonzero(groups == group), size=count, replace=False)
              for group, count in enumerate(counts) if count]
    return np.sort(np.concatenate(chosen))


def fit_reference(encoded: EncodedBenchmark, reference: str, model: str, model_params: dict, seed: int,
                  fraction: float | None = None, *, after_fit=None) -> dict:
    """Fit one reference and score it with the runs' evaluator; return its flat record.

    ``erm-all`` trains on the whole pool (``fraction`` must be None); ``oracle-balanced``
    on ``oracle_balanced_sample`` of ``fraction`` of the pool. The model is ``model``
    built with ``plain_model_params(model_params)`` and ``seed``'s initial weights (the
    runs' own), whatever robust head the runs use. ``after_fit(model, indices)``, if given, is
    called with the fitted model (e.g. to keep its f_enc of a probing set).
    """
    benchmark = encoded.benchmark
    pool_size = len(benchmark.pool)
    if reference == ERM_ALL and fraction is None:
        indices = np.arange(pool_size)
    elif reference == ORACLE_BALANCED and fraction is not None:
        size = resolve_size(fraction, pool_size, "fraction")
        rng = np.random.default_rng([seed, SAMPLE_STREAM, size])
        indices = oracle_balanced_sample(benchmark.pool.groups, size, rng)
    else:
        raise ValidationError(f"reference must be {ERM_ALL!r} (without a fraction) or {ORACLE_BALANCED!r} (with a "
                              f"fraction of the pool); got {reference!r} with fraction {fraction!r}")
    fitted = make_model(model, encoded.n_classes, seed=seed, **plain_model_params(model_params))
    input_kind = getattr(fitted, "input_kind", "features")
    inputs = benchmark.pool.texts if input_kind == "texts" else encoded.pool_features
    started = time.perf_counter()
    report = fitted.fit(take(inputs, indices), benchmark.pool.labels[indices])
    fit_seconds = time.perf_counter() - started
    metrics = BenchmarkEvaluator(encoded, n_seed=0, input_kind=input_kind)(fitted, indices)
    if after_fit is not None:
        after_fit(fitted, indices)
    return {
        "benchmark": benchmark.name,
        "reference": reference,
        "model": model,
        "seed": seed,
        "target_fraction": fraction,
        "n_labeled": int(indices.size),
        "fraction_labeled": indices.size / pool_size,
        "pool_size": pool_size,
        "train_group_counts": np.bincount(benchmark.pool.groups[indices], minlength=encoded.n_groups).tolist(),
        **metrics,
        "fit_seconds": fit_seconds,
        "stop_reason": report.stop_reason,
        "epochs": report.epochs,
    }


def panel_fits(seeds, fractions) -> list[tuple[str, int, float | None]]:
    """(reference, seed, fraction) of every fit of a panel: per seed, erm-all once and
    oracle-balanced at each fraction."""
    return [(reference, seed, fraction) for seed in seeds
            for reference, fraction in [(ERM_ALL, None)] + [(ORACLE_BALANCED, f) for f in fractions]]


def panel_at_fractions(panel: pd.DataFrame, fractions, metrics) -> pd.DataFrame:
    """The panel in the shape of the strategies' checkpoint tables (benchmark, strategy,
    fraction, n_labeled, metric, mean, std, n_seeds; ``strategy`` holds the reference's
    label): erm-all in every fraction column, oracle-balanced where it was drawn at the
    column's fraction. Mean and sample std (ddof=1) over seeds.

    ``panel`` has a row per fit with ``benchmark_label`` and ``model_label``; when one
    benchmark has panels of several (plain) models, each label names its model."""
    rows = []
    for benchmark in dict.fromkeys(panel["benchmark_label"]):
        by_benchmark = panel[panel["benchmark_label"] == benchmark]
        models = list(dict.fromkeys(by_benchmark["model_label"]))
        for reference, model in ((reference, model) for reference in PANEL_LABELS for model in models):
            fits = by_benchmark[(by_benchmark["reference"] == reference) & (by_benchmark["model_label"] == model)]
            label = PANEL_LABELS[reference] + (f" [{model}]" if len(models) > 1 else "")
            for fraction in fractions:
                at = fits if reference == ERM_ALL else fits[np.isclose(fits["target_fraction"].astype(float), fraction)]
                for metric in metrics if not at.empty else ():
                    values = at[metric].to_numpy(dtype=float)
                    rows.append({"benchmark": benchmark, "strategy": label, "fraction": fraction,
                                 "n_labeled": int(at["n_labeled"].iloc[0]), "metric": metric,
                                 "mean": float(values.mean()),
                                 "std": float(values.std(ddof=1)) if values.size > 1 else float("nan"),
                                 "n_seeds": int(values.size)})
    return pd.DataFrame(rows, columns=["benchmark", "strategy", "fraction", "n_labeled", "metric", "mean", "std",
                                       "n_seeds"])


def panel_note(random_present: bool) -> str:
    """What the reference rows of a report's accuracy table are (plain text, also valid Markdown)."""
    note = (f"Below the strategies, the reference panel (not strategies; same benchmark, seeds and model with the "
            f"plain ERM head; never counted in gains or label efficiency): {PANEL_LABELS[ERM_ALL]} = the model "
            f"trained on every pool label, the same value in every column; {PANEL_LABELS[ORACLE_BALANCED]} = the "
            "model trained on a sample of the pool of the column's size, balanced over the TRUE groups (an equal "
            "count per group as far as each group's supply allows). It is an oracle: it needs the group of every "
            "pool example, which a user never has.")
    return note if random_present else f"{note} {MISSING_RANDOM}"
