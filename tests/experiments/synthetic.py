"""A tiny, hand-made results set shaped like the store's rows (for table and report tests).

Benchmark "toy" with a pool of 1000, rounds at 10, 50 and 100 labels (1%, 5%, 10%), two
seeds, strategies random and alvin; every number is chosen so the tables can be checked by hand.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

GROUPS = ("negative/movie", "negative/other", "positive/movie", "positive/other")
N_LABELED = (10, 50, 100)
POOL = 1000

# (strategy, seed) -> per-round values
ACCURACY = {
    ("random", 0): {"id_accuracy": (0.50, 0.60, 0.70), "ood_accuracy": (0.40, 0.50, 0.60),
                    "worst_group_accuracy": (0.10, 0.20, 0.30)},
    ("random", 1): {"id_accuracy": (0.50, 0.70, 0.80), "ood_accuracy": (0.40, 0.50, 0.60),
                    "worst_group_accuracy": (0.10, 0.20, 0.50)},
    ("alvin", 0): {"id_accuracy": (0.50, 0.80, 0.80), "ood_accuracy": (0.40, 0.60, 0.70),
                   "worst_group_accuracy": (0.10, 0.30, 0.40)},
    ("alvin", 1): {"id_accuracy": (0.50, 0.80, 0.90), "ood_accuracy": (0.40, 0.60, 0.80),
                   "worst_group_accuracy": (0.10, 0.40, 0.60)},
}
UNCERTAINTY = {("random", 0): (0.2, 0.4), ("random", 1): (0.5, 0.5), ("alvin", 0): (0.6, 0.6), ("alvin", 1): (0.7, 0.9)}
DIVERSITY = {("random", 0): (1.0, 2.0), ("random", 1): (2.0, 2.0), ("alvin", 0): (3.0, 3.0), ("alvin", 1): (4.0, 4.0)}
REPRESENTATIVENESS = {key: (0.5, 0.5) for key in ACCURACY}
SELECT_SECONDS = {("random", 0): (0.0, 0.0), ("random", 1): (0.0, 0.0), ("alvin", 0): (1.0, 2.0),
                  ("alvin", 1): (3.0, 4.0)}
RECALL = {("alvin", 0): (0.5, 1.0), ("alvin", 1): (0.7, 0.8)}
# Upsampling at the last round, per group.
UPSAMPLING = {("random", 0): (1.0, 1.0, 1.0, 1.0), ("random", 1): (1.0, 1.2, 0.8, 1.0),
              ("alvin", 0): (0.5, 2.0, 3.0, 0.5), ("alvin", 1): (0.7, 4.0, 3.0, 0.3)}


def rows(benchmark_label: str = "toy", strategies=("random", "alvin"), strategy_params=None, rho: float | None = None,
         accuracy_shift: float = 0.0) -> list[dict]:
    """The rows of every (strategy, seed) run; ``accuracy_shift`` is added to alvin's accuracies."""
    strategy_params = strategy_params or {}
    records = []
    for strategy in strategies:
        base = "alvin" if strategy.startswith("alvin") else strategy
        for seed in (0, 1):
            key = (base, seed)
            run_id = f"{benchmark_label}-{strategy}-{json.dumps(strategy_params.get(strategy, {}))}-{seed}"
            for round_number, n_labeled in enumerate(N_LABELED):
                selecting = round_number < len(N_LABELED) - 1
                row = {
                    "benchmark": "toy", "strategy": strategy,
                    "strategy_params": json.dumps(strategy_params.get(strategy, {}), sort_keys=True),
                    "model": "mlp", "seed": seed, "round": round_number, "n_labeled": n_labeled,
                    "fraction_labeled": n_labeled / POOL,
                    "fit_seconds": 0.5, "select_seconds": SELECT_SECONDS[key][round_number] if selecting else 0.0,
                    "stop_reason": "loss_ratio",
                    "selected": list(range(n_labeled, N_LABELED[round_number + 1])) if selecting else [],
                    "diagnostics": json.dumps({"seconds_anchor_creation": 0.25 * SELECT_SECONDS[key][round_number],
                                               "seconds_example_selection": 0.75 * SELECT_SECONDS[key][round_number]}
                                              if base == "alvin" and selecting else {}),
                    "loop_config": json.dumps({"batch_size": 50, "budget": 0.1, "checkpoints": [0.01, 0.05, 0.1],
                                               "seed_size": 0.01, "min_seed_per_class": 2}),
                    "run_id": run_id, "benchmark_label": benchmark_label, "strategy_label": strategy,
                    "model_label": "mlp", "encoder": "minilm",
                    "benchmark_params": json.dumps({} if rho is None else {"rho": rho}),
                    "batch_uncertainty": UNCERTAINTY[key][round_number] if selecting else np.nan,
                    "batch_diversity": DIVERSITY[key][round_number] if selecting else np.nan,
                    "batch_representativeness": REPRESENTATIVENESS[key][round_number] if selecting else np.nan,
                }
                for metric, values in ACCURACY[key].items():
                    row[metric] = values[round_number] + (accuracy_shift if base == "alvin" else 0.0)
                for group, ratio in zip(GROUPS, UPSAMPLING[key]):
                    row[f"upsampling[{group}]"] = ratio if round_number == len(N_LABELED) - 1 else np.nan
                row["minority_groups"] = json.dumps(list(GROUPS[1:3]))
                row["minority_upsampling"] = (float(np.mean(UPSAMPLING[key][1:3]))
                                              if round_number == len(N_LABELED) - 1 else np.nan)
                if base == "alvin":
                    row["minority_recall"] = RECALL[key][round_number] if selecting else np.nan
                    row["minority_precision"] = 1.0 if selecting else np.nan
                records.append(row)
    return records


def results(**kwargs) -> pd.DataFrame:
    return pd.DataFrame(rows(**kwargs))


def encoded_benchmark(pool_per_group=(40, 6, 6, 40), test_per_group: int = 10, n_features: int = 8,
                      seed: int = 0):
    """A tiny spurious-correlation benchmark with ready features: groups (label x attribute),
    label in feature 0, attribute in feature 1 (a shortcut where the pool's groups are uneven)."""
    from anchoral.data.benchmarks import Benchmark, Split
    from anchoral.experiments.encoded import EncodedBenchmark

    rng = np.random.default_rng(seed)

    def split(per_group):
        groups = np.repeat(np.arange(len(GROUPS)), per_group)
        labels, attributes = groups // 2, groups % 2
        features = rng.normal(size=(groups.size, n_features)).astype(np.float32)
        features[:, 0] += 2.0 * (2 * labels - 1)
        features[:, 1] += 3.0 * (2 * attributes - 1)
        ids = np.array([f"x{rng.integers(1 << 40)}" for _ in groups])
        return Split(ids=ids, texts=[str(i) for i in ids], labels=labels, groups=groups), features

    (pool, pool_features), (id_test, id_features), (ood_test, ood_features) = (
        split(pool_per_group), split(pool_per_group), split([test_per_group] * len(GROUPS)))
    benchmark = Benchmark(name="toy", pool=pool, id_test=id_test, ood_test=ood_test,
                          class_names=("negative", "positive"), group_names=GROUPS, params={},
                          minority_groups=(1, 2))
    return EncodedBenchmark(benchmark=benchmark, pool_features=pool_features, id_features=id_features,
                            ood_features=ood_features, encoder_fingerprint="synthetic")
